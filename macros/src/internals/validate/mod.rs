//! Checks a tableau before any code is generated, in exact rational arithmetic (with a small
//! tolerance only when some coefficient was written as a decimal). Every problem is reported,
//! not just the first. The checks, in the order they report:
//!
//! 1. [`shape`]: nodes, name, explicitness and the lengths of `a`, `b`, `b_hat` (a problem here
//!    stops the validation: the other checks index by stage);
//! 2. [`consistency`]: row sums and weight sums;
//! 3. [`order`]: declared orders within reach, then the rooted-tree order conditions;
//! 4. [`dense`]: the `[dense]` section's continuous extension (after the order conditions,
//!    and only where everything before is sound).

mod common;
mod consistency;
mod dense;
mod order;
mod shape;

use num_rational::BigRational;

use crate::internals::rational::Coef;
use crate::internals::tableau::Tableau;
use crate::internals::trees::Forest;

pub use order::MAX_ORDER;

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
    let tol = common::Tolerance::of(&t);
    let Some(a) = shape::check(&t, &mut problems) else {
        return Err(problems);
    };
    consistency::check(&t, &a, &tol, &mut problems);
    order::check_declared(&t, &mut problems);
    if problems.is_empty() {
        let top = (t.order.max(t.embedded_order.unwrap_or(0)) + 1).min(MAX_ORDER + 1) as usize;
        let forest = Forest::up_to(top);
        let g = common::stage_weights(&forest, &common::values(&a), &tol);
        order::check(&t, &forest, &g, &tol, &mut problems);
        if let Some(d) = &t.dense {
            dense::check(&t, &a, d, &forest, &g, &tol, &mut problems);
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }

    let s = t.c.len();
    let fsal = common::is_fsal(&t, &a);
    let e = t.b_hat.as_ref().map(|bh| {
        t.b.iter()
            .zip(bh)
            .map(|(x, y)| &x.value - &y.value)
            .collect()
    });
    Ok(Method { s, a, fsal, e, t })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::internals::shipped::text as shipped_text;
    use crate::internals::tableau::parse;

    fn check(name: &str) -> Method {
        let t = parse(shipped_text(name).unwrap()).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        validate(t).unwrap_or_else(|e| panic!("{name}: {e:?}"))
    }

    #[test]
    fn every_shipped_tableau_validates() {
        for name in crate::internals::shipped::SHIPPED {
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
    use crate::internals::shipped::text as shipped_text;
    use crate::internals::tableau::parse;

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
