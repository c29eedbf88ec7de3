//! Checks a tableau before any code is generated: shape, explicitness, consistency and the
//! rooted-tree order conditions, all in exact rational arithmetic (with a small tolerance only
//! when some coefficient was written as a decimal). Every problem is reported, not just the first.

use num_rational::BigRational;
use num_traits::{One, Signed, Zero};

use crate::rational::Coef;
use crate::tableau::Tableau;
use crate::trees::{Fixed, Forest};

/// The highest order whose conditions are checked.
pub const MAX_ORDER: u32 = 8;

/// A tableau that passed validation, with the properties derived from it.
#[derive(Clone, Debug)]
pub struct Method {
    pub t: Tableau,
    /// Number of stages.
    pub s: usize,
    /// `a` as an `s`-row lower-triangular matrix (row `i` has `i` entries).
    pub a: Vec<Vec<Coef>>,
    /// First same as last: the last row of `a` equals `b` and the last node is 1.
    pub fsal: bool,
    /// Error weights `b − b̂`, exact, for adaptive methods.
    pub e: Option<Vec<BigRational>>,
}

/// Validates `t`, returning every problem found.
pub fn validate(t: Tableau) -> Result<Method, Vec<String>> {
    let mut problems = Vec::new();
    let s = t.c.len();
    let decimal =
        t.c.iter()
            .chain(t.b.iter())
            .chain(t.a.iter().flatten())
            .chain(t.b_hat.iter().flatten())
            .chain(t.dense.iter().flat_map(|d| d.b.iter().flatten()))
            .any(|c| c.decimal);
    // Decimal tableaux (e.g. tsit5) are published to about 16 digits.
    let tol = match &t.tolerance {
        Some(tol) => tol.value.abs(),
        None if decimal => BigRational::new(1.into(), 1_000_000_000_000i64.into()),
        None => BigRational::zero(),
    };
    let close = |x: &BigRational, y: &BigRational| (x - y).abs() <= tol;

    if s == 0 {
        problems.push("`c` is empty, expected one node per stage".into());
        return Err(problems);
    }
    if !t.c[0].is_zero() {
        problems.push(format!("`c[0]` is {}, expected 0 (the first stage of an explicit method is at the step's start)", t.c[0].value));
    }
    if t.name.is_empty()
        || !t
            .name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
    {
        problems.push(format!(
            "`name` is `{}`, expected an identifier of letters, digits and `_`",
            t.name
        ));
    }

    // Shape and explicitness of `a`.
    if t.a.len() != s {
        // Per-row checks would be misaligned; report the count alone.
        let rows = if t.a.len() == 1 { "row" } else { "rows" };
        problems.push(format!("`a` has {} {rows}, expected {s}: one per entry of `c`, starting with `[]` for the first stage", t.a.len()));
        return Err(problems);
    }
    let mut a: Vec<Vec<Coef>> = Vec::with_capacity(s);
    for (i, row) in t.a.iter().enumerate() {
        if row.len() == i {
            a.push(row.clone());
        } else if row.len() > i && row.len() <= s {
            // A row of the full square matrix: say whether it is implicit; either way the schema
            // asks for the strictly lower part only.
            let mut explicit = true;
            for (j, coef) in row.iter().enumerate().skip(i) {
                if !coef.is_zero() {
                    explicit = false;
                    problems.push(format!(
                        "the method is not explicit: `a[{i}][{j}]` is {}, expected 0 (only entries below the diagonal may be nonzero)",
                        coef.value
                    ));
                }
            }
            if explicit {
                let below = match i {
                    0 => "the first row is `[]`: nothing lies below the diagonal".to_string(),
                    1 => "row 1 holds only `a[1][0]`, the entry below the diagonal; drop the trailing zeros".to_string(),
                    _ => format!("row {i} holds only the entries below the diagonal, `a[{i}][0]` … `a[{i}][{}]`; drop the trailing zeros", i - 1),
                };
                problems.push(format!(
                    "`a[{i}]` has {} {}, expected {i}: {below}",
                    row.len(),
                    entries(row.len()),
                ));
            }
        } else {
            problems.push(format!(
                "`a[{i}]` has {} {}, expected {i}",
                row.len(),
                entries(row.len())
            ));
        }
    }
    if t.b.len() != s {
        problems.push(format!(
            "`b` has {} {}, expected {s}",
            t.b.len(),
            entries(t.b.len())
        ));
    }
    match (&t.b_hat, t.embedded_order) {
        (Some(bh), _) if bh.len() != s => problems.push(format!(
            "`b_hat` has {} {}, expected {s}",
            bh.len(),
            entries(bh.len())
        )),
        (Some(_), None) => problems.push("`b_hat` is given but `embedded_order` is missing".into()),
        (None, Some(_)) => problems.push("`embedded_order` is given but `b_hat` is missing".into()),
        _ => {}
    }
    if !problems.is_empty() || a.len() != s {
        return Err(problems);
    }

    // Consistency: row sums equal the nodes; weights sum to one.
    for (i, (row, c)) in a.iter().zip(&t.c).enumerate() {
        let sum: BigRational = row.iter().map(|x| x.value.clone()).sum();
        if !close(&sum, &c.value) {
            problems.push(format!(
                "row sum of `a[{i}]` is {sum} but `c[{i}]` is {}",
                c.value
            ));
        }
    }
    let one = BigRational::from_integer(1.into());
    let weight_sum = |w: &[Coef]| w.iter().map(|x| x.value.clone()).sum::<BigRational>();
    let sb = weight_sum(&t.b);
    if !close(&sb, &one) {
        problems.push(format!("weights `b` sum to {sb}, expected 1"));
    }
    if let Some(bh) = &t.b_hat {
        let sbh = weight_sum(bh);
        if !close(&sbh, &one) {
            problems.push(format!("weights `b_hat` sum to {sbh}, expected 1"));
        }
        if bh.iter().zip(&t.b).all(|(x, y)| x.value == y.value) {
            problems.push("`b_hat` equals `b`, so the error estimate would always be zero".into());
        }
    }

    // Order conditions.
    for (key, declared) in [
        ("order", Some(t.order)),
        ("embedded_order", t.embedded_order),
    ] {
        if let Some(p) = declared {
            if p > MAX_ORDER {
                problems.push(format!(
                    "`{key}` is {p}, but order conditions are checked only up to order {MAX_ORDER}"
                ));
            }
        }
    }
    if problems.is_empty() {
        let top = (t.order.max(t.embedded_order.unwrap_or(0)) + 1).min(MAX_ORDER + 1) as usize;
        let forest = Forest::up_to(top);
        let a_vals: Vec<Vec<BigRational>> = a
            .iter()
            .map(|row| row.iter().map(|x| x.value.clone()).collect())
            .collect();
        // Exact tableaux: exact rationals. Approximate ones (decimals, or a `tolerance`): fixed
        // point with ~90 digits, far below any tolerance, and fast.
        let weights_of = |a_vals: &[Vec<BigRational>]| -> Vec<Vec<BigRational>> {
            if tol.is_zero() {
                forest.stage_weights(a_vals)
            } else {
                let a_fixed: Vec<Vec<Fixed>> = a_vals
                    .iter()
                    .map(|row| row.iter().map(Fixed::from_rational).collect())
                    .collect();
                forest
                    .stage_weights(&a_fixed)
                    .iter()
                    .map(|v| v.iter().map(Fixed::to_rational).collect())
                    .collect()
            }
        };
        let g = weights_of(&a_vals);
        let mut weights = vec![("order", "b", t.order, t.b.clone())];
        if let (Some(p), Some(bh)) = (t.embedded_order, &t.b_hat) {
            weights.push(("embedded_order", "b_hat", p, bh.clone()));
        }
        for (key, wkey, declared, w) in weights {
            let w: Vec<BigRational> = w.iter().map(|x| x.value.clone()).collect();
            // The first tree (in order of size) whose condition fails.
            let failure = forest.trees.iter().enumerate().find_map(|(k, tree)| {
                let phi: BigRational = w.iter().zip(&g[k]).map(|(x, y)| x * y).sum();
                let target = tree.gamma.recip();
                (!close(&phi, &target)).then_some((tree.order, k, phi, target))
            });
            match failure {
                Some((o, k, phi, target)) if (o as u32) <= declared => problems.push(format!(
                    "`{key}` is {declared} but `{wkey}` has order {}: the condition for tree {} fails, Φ = {} but 1/γ = {target}",
                    o - 1,
                    forest.name(k),
                    show(&phi, decimal),
                )),
                None if declared < MAX_ORDER => problems.push(format!(
                    "`{key}` is {declared} but `{wkey}` satisfies the order conditions of order {}; declare the order the method has",
                    declared + 1
                )),
                Some((o, ..)) if (o as u32) > declared + 1 => problems.push(format!(
                    "`{key}` is {declared} but `{wkey}` satisfies the order conditions of order {}; declare the order the method has",
                    o - 1
                )),
                _ => {}
            }
        }
        if let Some(d) = &t.dense {
            let mut b: Vec<BigRational> = t.b.iter().map(|x| x.value.clone()).collect();
            let fsal = is_fsal(&t, &a);
            // A non-FSAL method's interpolant may also use f(t + h, y): one more stage, at node
            // 1 with row b, whose weight in the step is 0.
            let extra = d.b.len() == s + 1 && !fsal;
            let g = if extra {
                let mut a_ext = a_vals.clone();
                a_ext.push(b.clone());
                b.push(BigRational::zero());
                weights_of(&a_ext)
            } else {
                g
            };
            let dense = DenseCheck {
                order: t.order,
                fsal,
                extra,
                forest: &forest,
                g: &g,
                close: &close,
                decimal,
            };
            dense.check(d, &b, &mut problems);
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }

    let fsal = is_fsal(&t, &a);
    let e = t.b_hat.as_ref().map(|bh| {
        t.b.iter()
            .zip(bh)
            .map(|(x, y)| &x.value - &y.value)
            .collect()
    });
    Ok(Method { s, a, fsal, e, t })
}

/// Whether the last stage is `f(t + h, y)`: node 1, row `b`, weight 0 (first same as last).
fn is_fsal(t: &Tableau, a: &[Vec<Coef>]) -> bool {
    let s = t.c.len();
    s > 1
        && t.c[s - 1].value.is_one()
        && a[s - 1].iter().zip(&t.b).all(|(x, y)| x.value == y.value)
        && t.b[s - 1].is_zero()
}

/// What checking a `[dense]` section needs of the method.
struct DenseCheck<'a> {
    /// The method's order.
    order: u32,
    fsal: bool,
    /// The interpolant uses the extra stage `f(t + h, y)` (the last of `g`'s stages).
    extra: bool,
    forest: &'a Forest,
    /// Stage weights `Φᵢ(τ)` per tree, over the interpolant's stages.
    g: &'a [Vec<BigRational>],
    close: &'a dyn Fn(&BigRational, &BigRational) -> bool,
    decimal: bool,
}

impl DenseCheck<'_> {
    /// The `[dense]` section: one row per stage (a non-FSAL method may add one for
    /// `f(t + h, y)`), `bᵢ(1) = bᵢ`, and the continuous extension's order conditions (Hairer,
    /// Nørsett & Wanner I, Theorem II.6.1): for every tree `τ` with `|τ| ≤ p*`,
    /// `Σᵢ bᵢ(θ) Φᵢ(τ) = θ^|τ| / γ(τ)` as polynomials in `θ`, coefficient by coefficient. `b`
    /// holds the weights over the same stages as `self.g` (0 for the extra stage).
    fn check(&self, d: &crate::tableau::Dense, b: &[BigRational], problems: &mut Vec<String>) {
        let (order, forest, g, close, decimal) =
            (self.order, self.forest, self.g, self.close, self.decimal);
        // Independent of the coefficients, so reported next to any problem with them.
        let above = d.order > order;
        if above {
            problems.push(format!(
                "`dense.order` is {} but the method has order {order}: a continuous extension cannot exceed it",
                d.order
            ));
        }
        let s = b.len();
        if d.b.len() != s {
            let rows = if d.b.len() == 1 { "row" } else { "rows" };
            let expected = if self.fsal {
                format!(
                    "{s}: one polynomial per stage (the last stage, FSAL, is already f(t + h, y))"
                )
            } else {
                format!(
                    "{s} (one polynomial per stage) or {} (and one for the extra stage f(t + h, y))",
                    s + 1
                )
            };
            problems.push(format!(
                "`dense.b` has {} {rows}, expected {expected}",
                d.b.len()
            ));
            return;
        }
        let degree = d.b.iter().map(Vec::len).max().unwrap_or(0);
        if degree == 0 {
            problems.push(
                "`dense.b` has only empty rows: give the coefficients of θ, θ², … of each bᵢ(θ)"
                    .into(),
            );
            return;
        }
        for (i, (row, bi)) in d.b.iter().zip(b).enumerate() {
            let at_one: BigRational = row.iter().map(|x| x.value.clone()).sum();
            if !close(&at_one, bi) {
                let of = if !(self.extra && i == s - 1) {
                    format!("`b[{i}]` is {bi}")
                } else {
                    "the extra stage f(t + h, y) has weight 0 in the step".to_string()
                };
                problems.push(format!(
                    "`dense.b[{i}]` gives b{i}(1) = {} but {of}: the interpolant must end at the step's solution",
                    show(&at_one, decimal),
                ));
            }
        }
        if above {
            return;
        }
        let coef = |i: usize, m: usize| -> BigRational {
            d.b[i]
                .get(m - 1)
                .map(|c| c.value.clone())
                .unwrap_or_else(BigRational::zero)
        };
        // The first tree (by size) whose condition fails, and for which power of θ.
        let failure = forest.trees.iter().enumerate().find_map(|(k, tree)| {
            if tree.order as u32 > d.order + 1 {
                return None;
            }
            (1..=degree.max(tree.order)).find_map(|m| {
                let got: BigRational = (0..s).map(|i| coef(i, m) * &g[k][i]).sum();
                let want = if m == tree.order {
                    tree.gamma.recip()
                } else {
                    BigRational::zero()
                };
                (!close(&got, &want)).then_some((tree.order, k, m, got, want))
            })
        });
        match failure {
            Some((o, k, m, got, want)) if o as u32 <= d.order => problems.push(format!(
                "`dense.order` is {} but the interpolant has order {}: for tree {}, the coefficient of θ^{m} in Σ bᵢ(θ) Φᵢ is {} but should be {want}",
                d.order,
                o - 1,
                forest.name(k),
                show(&got, decimal)
            )),
            None if d.order < order => problems.push(format!(
                "`dense.order` is {} but the interpolant satisfies the conditions of order {}; declare the order it has",
                d.order,
                d.order + 1
            )),
            _ => {}
        }
    }
}

fn entries(n: usize) -> &'static str {
    if n == 1 {
        "entry"
    } else {
        "entries"
    }
}

fn show(x: &BigRational, decimal: bool) -> String {
    if decimal {
        format!("{:.6e}", crate::rational::to_f64(x))
    } else {
        x.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::shipped_text;
    use crate::tableau::parse;

    fn check(name: &str) -> Method {
        let t = parse(shipped_text(name).unwrap()).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        validate(t).unwrap_or_else(|e| panic!("{name}: {e:?}"))
    }

    #[test]
    fn every_shipped_tableau_validates() {
        for name in crate::attr::SHIPPED {
            let m = check(name);
            assert_eq!(&m.t.name, name, "file name and `name` agree");
        }
    }

    #[test]
    fn derives_fsal() {
        assert!(check("dopri5").fsal);
        assert!(check("bosh3").fsal);
        assert!(check("tsit5").fsal);
        assert!(!check("rk4").fsal);
        assert!(!check("dopri8").fsal);
    }

    fn errors(text: &str) -> Vec<String> {
        validate(parse(text).unwrap()).unwrap_err()
    }

    const HEUN: &str = r#"
        name = "heun"
        title = "t"
        reference = "r"
        order = 2
        c = ["0", "1"]
        a = [[], ["1"]]
        b = ["1/2", "1/2"]
    "#;

    #[test]
    fn accepts_heun() {
        let m = validate(parse(HEUN).unwrap()).unwrap();
        assert_eq!(m.s, 2);
        assert!(!m.fsal);
    }

    #[test]
    fn reports_wrong_declared_order_both_ways() {
        let e = errors(&HEUN.replace("order = 2", "order = 3"));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("`order` is 3 but `b` has order 2: the condition for tree [τ²] fails"),
            "{e:?}"
        );
        let e = errors(&HEUN.replace("order = 2", "order = 1"));
        assert!(
            e[0].contains("satisfies the order conditions of order 2"),
            "{e:?}"
        );
    }

    #[test]
    fn collects_every_problem() {
        let bad = HEUN
            .replace("[\"1\"]", "[\"1/2\"]")
            .replace("b = [\"1/2\", \"1/2\"]", "b = [\"1/2\", \"1/4\"]");
        let e = errors(&bad);
        assert!(
            e.iter()
                .any(|m| m == "row sum of `a[1]` is 1/2 but `c[1]` is 1"),
            "{e:?}"
        );
        assert!(
            e.iter().any(|m| m == "weights `b` sum to 3/4, expected 1"),
            "{e:?}"
        );
    }

    #[test]
    fn rejects_implicit_methods_and_bad_shapes() {
        let e = errors(&HEUN.replace("a = [[], [\"1\"]]", "a = [[\"1/2\", \"0\"], [\"1\"]]"));
        assert_eq!(e, ["the method is not explicit: `a[0][0]` is 1/2, expected 0 (only entries below the diagonal may be nonzero)"]);
        let e = errors(&HEUN.replace("a = [[], [\"1\"]]", "a = [[], []]"));
        assert_eq!(e, ["`a[1]` has 0 entries, expected 1"]);
    }
}

#[cfg(test)]
mod dense_tests {
    use super::*;
    use crate::load::shipped_text;
    use crate::tableau::parse;

    fn dopri5_with(edit: impl Fn(&str) -> String) -> Result<Method, Vec<String>> {
        let text = edit(shipped_text("dopri5").unwrap());
        validate(parse(&text).map_err(|e| panic!("{e:?}")).unwrap())
    }

    #[test]
    fn shipped_continuous_extensions_have_their_declared_orders() {
        for (name, order) in [("dopri5", 4), ("tsit5", 4), ("bosh3", 3), ("dopri8", 5)] {
            let t = parse(shipped_text(name).unwrap()).unwrap();
            assert_eq!(t.dense.as_ref().map(|d| d.order), Some(order), "{name}");
            validate(t).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        }
    }

    #[test]
    fn wrong_continuous_extensions_are_refused() {
        // Declared too high: the order-5 conditions fail.
        let e = dopri5_with(|t| t.replace("[dense]\norder = 4", "[dense]\norder = 5")).unwrap_err();
        assert!(
            e[0].contains("`dense.order` is 5 but the interpolant has order 4"),
            "{e:?}"
        );
        // Declared too low.
        let e = dopri5_with(|t| t.replace("[dense]\norder = 4", "[dense]\norder = 3")).unwrap_err();
        assert!(e[0].contains("declare the order it has"), "{e:?}");
        // One coefficient changed, the endpoint kept (θ² and θ³ terms of b3 moved by ±1/1000):
        // the order conditions catch it.
        let e = dopri5_with(|t| {
            t.replace(
                r#"["0", "131558114200/32700410799", "-68118460800/10900136933", "87487479700/32700410799"]"#,
                r#"["0", "131591814610/32700410799", "-68129361799/10900136933", "87487479700/32700410799"]"#,
            )
        })
        .unwrap_err();
        assert!(
            e.iter()
                .any(|m| m.contains("but the interpolant has order")),
            "{e:?}"
        );
        // The endpoint: b_i(1) must be b_i.
        let e = dopri5_with(|t| {
            t.replace(
                r#"["0", "40617522/29380423", "-110615467/29380423", "69997945/29380423"]"#,
                r#"["0", "40617522/29380423", "-110615467/29380423", "1"]"#,
            )
        })
        .unwrap_err();
        assert!(
            e.iter().any(|m| m.contains("`dense.b[6]` gives b6(1)")),
            "{e:?}"
        );
        // One row too few.
        let e = dopri5_with(|t| {
            t.replace(
                "  [\"0\", \"40617522/29380423\", \"-110615467/29380423\", \"69997945/29380423\"],\n",
                "",
            )
        })
        .unwrap_err();
        assert!(e[0].contains("`dense.b` has 6 rows, expected 7"), "{e:?}");
    }

    #[test]
    fn an_extra_dense_row_is_f_at_the_steps_end() {
        // dopri8 is not FSAL: its 14th row weighs f(t + h, y), whose weight in the step is 0.
        let dopri8 = || shipped_text("dopri8").unwrap().to_string();
        validate(parse(&dopri8()).unwrap()).unwrap();
        let last = r#"  ["40967785958/892733507789", "-215924625699/339207242417", "166436361084/61578073063", "-3717626143868/950872087065", "1637506058143/910982276365"],"#;
        assert!(dopri8().contains(last));
        let e =
            validate(parse(&dopri8().replace(last, r#"  ["1", "0", "0", "0", "0"],"#)).unwrap())
                .unwrap_err();
        assert!(
            e.iter().any(|m| m.contains(
                "`dense.b[13]` gives b13(1) = 1 but the extra stage f(t + h, y) has weight 0"
            )),
            "{e:?}"
        );
        // Order 6 is out of reach with these 14 stages.
        let e =
            validate(parse(&dopri8().replace("[dense]\norder = 5", "[dense]\norder = 6")).unwrap())
                .unwrap_err();
        assert!(
            e[0].contains("`dense.order` is 6 but the interpolant has order 5"),
            "{e:?}"
        );
        // An FSAL method has no extra stage: its last stage already is f(t + h, y).
        let e = dopri5_with(|t| {
            t.replace(
                "b = [\n  [\"1\", \"-8048581381",
                "b = [\n  [\"0\"],\n  [\"1\", \"-8048581381",
            )
        })
        .unwrap_err();
        assert!(
            e[0].contains("`dense.b` has 8 rows, expected 7: one polynomial per stage (the last stage, FSAL, is already f(t + h, y))"),
            "{e:?}"
        );
    }

    #[test]
    fn dense_section_keys_are_checked() {
        let text = shipped_text("bosh3")
            .unwrap()
            .replace("[dense]\norder = 3", "[dense]\nordr = 3");
        let e = parse(&text).unwrap_err();
        assert!(
            e.iter().any(|m| m.contains("unknown key `dense.ordr`")),
            "{e:?}"
        );
        assert!(
            e.iter().any(|m| m.contains("missing key `dense.order`")),
            "{e:?}"
        );
    }
}
