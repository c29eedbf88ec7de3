//! The stage analysis of a validated method, computed once: everything the code generators need
//! to know about the stages, so that they only print.
//!
//! A backward step sweeps the stages that can influence what the step is differentiated for.
//! Without outputs inside the step that is its result `y = x + h Σ bᵢ kᵢ`; with outputs, also
//! the interpolant `y(t + θh) = x + h Σᵢ bᵢ(θ) kᵢ`, which may read stages the result does not
//! (the FSAL stage) or one more stage, `f(t + h, y)` (row `b`, node 1). So each stage is live
//! [`When::Always`], only [`When::WithOutputs`], or [`When::Never`], and likewise for whether
//! its derivative `kᵢ` is needed to rebuild a later live stage.
//!
//! The interpolant is the tableau's `[dense]` section, over the step's own stages (for a method
//! that is not FSAL, optionally one more: `f(t + h, y)`). Without one, the method gets the cubic
//! Hermite interpolant through the step's endpoints and their derivatives, written over the same
//! stages: with `y = x + h Σ bᵢ kᵢ`,
//! `y(θ) = x + h [h₀₁(θ) Σ bᵢ kᵢ + h₁₀(θ) k₁ + h₁₁(θ) f(t + h, y)]` with `h₀₁ = 3θ² − 2θ³`,
//! `h₁₀ = θ − 2θ² + θ³`, `h₁₁ = θ³ − θ²`. For an FSAL method `f(t + h, y)` is the last stage;
//! otherwise it is the extra stage, which the runtime hands on as the next step's first
//! evaluation.

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::Zero;

use super::validate::Method;

/// When a stage (or its derivative) takes part in the backward step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    /// Never: dead stages are neither rebuilt nor differentiated.
    Never,
    /// Only for a step with outputs inside it (the interpolant reads it).
    WithOutputs,
    /// In every backward step.
    Always,
}

impl When {
    fn of(always: bool, with_outputs: bool) -> When {
        match (always, with_outputs) {
            (true, _) => When::Always,
            (false, true) => When::WithOutputs,
            (false, false) => When::Never,
        }
    }

    /// Live at all (always, or with outputs).
    pub fn ever(self) -> bool {
        self != When::Never
    }
}

/// Where a solve that keeps stages finds a stage's state without rebuilding it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stored {
    /// The step's input `x` (stage 1).
    Input,
    /// `stages[j]`: the `j`-th of the kept stages.
    Kept(usize),
    /// The step's result `y`: the FSAL stage, or the interpolant's extra stage.
    Result,
}

/// One stage of the backward sweep.
#[derive(Clone, Debug)]
pub struct Stage {
    /// `aᵢⱼ` for `j < i` (the extra stage: `b`).
    pub row: Vec<BigRational>,
    /// Its weight in the step's result (0 for the extra stage).
    pub b: BigRational,
    /// Its node.
    pub c: BigRational,
    /// Its interpolant weight `bᵢ(θ)` is not identically zero: outputs add to its cotangent.
    pub output: bool,
    /// Whether it is rebuilt and differentiated.
    pub live: When,
    /// Whether its derivative `kᵢ` is needed to rebuild a later live stage.
    pub needs_k: When,
    /// Where the stage store serves its state, if it does.
    pub stored: Option<Stored>,
}

/// The interpolant `y(t + θh) = x + h Σᵢ bᵢ(θ) kᵢ` over `rows.len()` stages.
#[derive(Clone, Debug)]
pub struct Interpolant {
    /// Row `i`: the coefficients of `θ, θ², …` in `bᵢ(θ)` (trailing zeros dropped for Hermite).
    pub rows: Vec<Vec<BigRational>>,
    /// Its order.
    pub order: u32,
    /// The cubic Hermite fallback (no `[dense]` section).
    pub hermite: bool,
}

impl Interpolant {
    /// Whether it reads one stage more than the method has: `f(t + h, y)`.
    pub fn extra(&self, s: usize) -> bool {
        self.rows.len() > s
    }
}

/// Everything the generators need to know about the stages of a method.
#[derive(Clone, Debug)]
pub struct Analysis {
    /// The method's stages.
    pub s: usize,
    /// The stages of the backward sweep: the method's, and the interpolant's extra stage
    /// `f(t + h, y)` where it has one.
    pub stages: Vec<Stage>,
    /// The 0-based stages whose states `step` records for the stage store: the stages live in
    /// every backward step but the first, whose state is the step's input.
    pub kept: Vec<usize>,
    /// The interpolant between step boundaries.
    pub interpolant: Interpolant,
    /// Whether the stage store (input, kept stages, result) serves every stage of the sweep
    /// with outputs, so that a step with outputs rebuilds nothing either. Where it does not (a
    /// `[dense]` section reading a stage the step itself does not need, on a method that is not
    /// FSAL), such a step rebuilds.
    pub stored_covers_outputs: bool,
}

/// Analyses `m`.
pub fn analyse(m: &Method) -> Analysis {
    let s = m.s;
    let interpolant = interpolant(m);
    let mut a: Vec<Vec<BigRational>> =
        m.a.iter()
            .map(|row| row.iter().map(|c| c.value.clone()).collect())
            .collect();
    let mut b: Vec<BigRational> = m.t.b.iter().map(|b| b.value.clone()).collect();
    let mut c: Vec<BigRational> = m.t.c.iter().map(|c| c.value.clone()).collect();
    if interpolant.extra(s) {
        // The extra stage f(t + h, y): row b, node 1, no weight in the step.
        a.push(b.clone());
        b.push(BigRational::zero());
        c.push(BigRational::from_integer(1.into()));
    }
    let n = a.len();
    let output: Vec<bool> = (0..n)
        .map(|i| {
            interpolant
                .rows
                .get(i)
                .is_some_and(|row| row.iter().any(|q| !q.is_zero()))
        })
        .collect();
    // Without outputs: the method's own stages, weighted by b. With outputs: also the stages the
    // interpolant reads.
    let live_always = live(&a[..s], &b[..s], &vec![false; s]);
    let live_outputs = live(&a, &b, &output);
    let needs_always = needs_k(&a[..s], &live_always);
    let needs_outputs = needs_k(&a, &live_outputs);
    let at = |v: &[bool], i: usize| v.get(i).copied().unwrap_or(false);
    let kept: Vec<usize> = (1..s).filter(|&i| live_always[i]).collect();
    // The stage whose state is the step's result `y` and that only the interpolant reads: the
    // FSAL stage, or the extra stage.
    let y_stage = if interpolant.extra(s) {
        Some(s)
    } else {
        m.fsal.then(|| s - 1)
    };
    let stages: Vec<Stage> = (0..n)
        .map(|i| {
            let stored = if i == 0 {
                Some(Stored::Input)
            } else if let Some(j) = kept.iter().position(|&k| k == i) {
                Some(Stored::Kept(j))
            } else {
                (y_stage == Some(i)).then_some(Stored::Result)
            };
            Stage {
                row: a[i].clone(),
                b: b[i].clone(),
                c: c[i].clone(),
                output: output[i],
                live: When::of(at(&live_always, i), live_outputs[i]),
                needs_k: When::of(at(&needs_always, i), needs_outputs[i]),
                stored,
            }
        })
        .collect();
    let stored_covers_outputs = stages
        .iter()
        .all(|st| !st.live.ever() || st.stored.is_some());
    Analysis {
        s,
        stages,
        kept,
        interpolant,
        stored_covers_outputs,
    }
}

/// Stage `i` is live when `bᵢ ≠ 0`, outputs read it, or some later live stage uses `kᵢ`.
fn live(a: &[Vec<BigRational>], b: &[BigRational], output: &[bool]) -> Vec<bool> {
    let s = a.len();
    let mut live = vec![false; s];
    for i in (0..s).rev() {
        live[i] = !b[i].is_zero() || output[i] || (i + 1..s).any(|j| live[j] && !a[j][i].is_zero());
    }
    live
}

/// `kⱼ` is needed while rebuilding iff a later live stage uses it.
fn needs_k(a: &[Vec<BigRational>], live: &[bool]) -> Vec<bool> {
    let s = a.len();
    (0..s)
        .map(|j| (j + 1..s).any(|i| live[i] && !a[i][j].is_zero()))
        .collect()
}

fn q(n: i64) -> BigRational {
    BigRational::from_integer(BigInt::from(n))
}

/// The interpolant of `m`: its `[dense]` section, else cubic Hermite (one extra stage unless
/// the method is FSAL).
fn interpolant(m: &Method) -> Interpolant {
    if let Some(d) = &m.t.dense {
        let mut rows: Vec<Vec<BigRational>> =
            d.b.iter()
                .map(|row| row.iter().map(|c| c.value.clone()).collect())
                .collect();
        // One row per stage, or one more for the extra stage f(t + h, y) (validated).
        let len = rows.len().max(m.s);
        rows.resize(len, Vec::new());
        return Interpolant {
            rows,
            order: d.order,
            hermite: false,
        };
    }
    let stages = if m.fsal { m.s } else { m.s + 1 };
    let mut rows = vec![vec![BigRational::zero(); 3]; stages];
    // h₀₁(θ) bᵢ = bᵢ (3θ² − 2θ³)
    for (row, b) in rows.iter_mut().zip(&m.t.b) {
        row[1] += &b.value * q(3);
        row[2] -= &b.value * q(2);
    }
    // h₁₀(θ) k₁ = (θ − 2θ² + θ³) k₁
    rows[0][0] += q(1);
    rows[0][1] -= q(2);
    rows[0][2] += q(1);
    // h₁₁(θ) f(t + h, y) = (θ³ − θ²) f(t + h, y)
    let last = stages - 1;
    rows[last][1] -= q(1);
    rows[last][2] += q(1);
    for row in &mut rows {
        while row.last().is_some_and(Zero::is_zero) {
            row.pop();
        }
    }
    Interpolant {
        rows,
        order: m.t.order.min(3),
        hermite: true,
    }
}

#[cfg(test)]
mod tests {
    use num_traits::One;

    use super::*;
    use crate::internals::shipped::{text, SHIPPED};
    use crate::internals::tableau::parse;
    use crate::internals::validate::validate;

    fn method(name: &str) -> Method {
        validate(parse(text(name).unwrap()).unwrap()).unwrap()
    }

    fn live(name: &str) -> Vec<When> {
        analyse(&method(name))
            .stages
            .iter()
            .map(|s| s.live)
            .collect()
    }

    use When::{Always as A, Never as N, WithOutputs as O};

    #[test]
    fn the_fsal_stage_is_live_only_with_outputs() {
        // dopri5 and tsit5: the FSAL stage is dead in the step, but their [dense] sections
        // read it; bosh3's too.
        assert_eq!(live("dopri5"), [A, A, A, A, A, A, O]);
        assert_eq!(live("tsit5"), [A, A, A, A, A, A, O]);
        assert_eq!(live("bosh3"), [A, A, A, O]);
        // midpoint: b1 = 0, but stage 2 uses k1. The Hermite interpolant's extra stage
        // f(t + h, y) is live only with outputs.
        assert_eq!(live("midpoint"), [A, A, O]);
        assert_eq!(live("rk4"), [A, A, A, A, O]);
        // dopri8: its [dense] section's 14th row weighs the extra stage.
        let d8 = live("dopri8");
        assert_eq!(d8.len(), 14);
        assert!(d8[..13].iter().all(|&l| l == A) && d8[13] == O);
    }

    #[test]
    fn a_needed_derivative_belongs_to_a_live_stage() {
        for name in SHIPPED {
            for st in &analyse(&method(name)).stages {
                // kᵢ is computed from Xᵢ: needed always, Xᵢ is live always; needed with
                // outputs, Xᵢ is live then.
                match st.needs_k {
                    A => assert_eq!(st.live, A, "{name}"),
                    O => assert!(st.live.ever(), "{name}"),
                    N => {}
                }
            }
        }
    }

    #[test]
    fn which_derivatives_each_rebuild_needs() {
        // dopri5: k6 is needed only to rebuild the FSAL stage, which only outputs read.
        let a = analyse(&method("dopri5"));
        let needs: Vec<When> = a.stages.iter().map(|s| s.needs_k).collect();
        assert_eq!(needs, [A, A, A, A, A, O, N]);
        // rk4: the extra stage f(t + h, y) is rebuilt with outputs, so k4 is needed then.
        let a = analyse(&method("rk4"));
        let needs: Vec<When> = a.stages.iter().map(|s| s.needs_k).collect();
        assert_eq!(needs, [A, A, A, O, N]);
    }

    #[test]
    fn kept_stages_are_the_live_ones_but_the_first() {
        assert_eq!(analyse(&method("dopri5")).kept, [1, 2, 3, 4, 5]);
        assert_eq!(analyse(&method("euler")).kept, Vec::<usize>::new());
        assert_eq!(analyse(&method("rk4")).kept, [1, 2, 3]);
    }

    #[test]
    fn the_stage_store_covers_the_sweep_with_outputs_through_the_steps_result() {
        for name in SHIPPED {
            assert!(analyse(&method(name)).stored_covers_outputs, "{name}");
        }
        // dopri5: the interpolant reads the FSAL stage, whose state is only the step's result.
        let a = analyse(&method("dopri5"));
        assert_eq!(a.stages[6].stored, Some(Stored::Result));
        assert_eq!(a.stages[5].stored, Some(Stored::Kept(4)));
        assert_eq!(a.stages[0].stored, Some(Stored::Input));
        // rk4 (Hermite, not FSAL): the extra stage f(t + h, y) is the fifth.
        let a = analyse(&method("rk4"));
        assert_eq!(a.stages.len(), 5);
        assert_eq!(a.stages[4].stored, Some(Stored::Result));
        assert_eq!(a.stages[3].stored, Some(Stored::Kept(2)));
    }

    #[test]
    fn a_dense_section_may_use_the_extra_stage() {
        // dopri8 (13 stages, not FSAL): its [dense] section's 14th row weighs f(t + h, y).
        let m = method("dopri8");
        assert!(!m.fsal);
        let a = analyse(&m);
        assert!(!a.interpolant.hermite);
        assert_eq!((a.interpolant.rows.len(), a.interpolant.order), (14, 5));
        assert_eq!(a.stages.len(), 14);
        assert!(a.stages[13].output && !a.stages[1].output);
        // Its state is the step's result, so the stage store serves it without a rebuild.
        assert_eq!(a.stages[13].stored, Some(Stored::Result));
        // bosh3's [dense] section over its FSAL stage: no extra stage.
        assert_eq!(analyse(&method("bosh3")).interpolant.rows.len(), 4);
    }

    /// `Σ_j c_j θ^j` at `θ`, exactly.
    fn eval(row: &[BigRational], theta: &BigRational) -> BigRational {
        let mut acc = BigRational::zero();
        let mut pow = theta.clone();
        for c in row {
            acc += c * &pow;
            pow *= theta;
        }
        acc
    }

    /// The derivative of `Σ_j c_j θ^j` at `θ`, exactly.
    fn deriv(row: &[BigRational], theta: &BigRational) -> BigRational {
        let mut acc = BigRational::zero();
        let mut pow = BigRational::one();
        for (j, c) in row.iter().enumerate() {
            acc += c * q(j as i64 + 1) * &pow;
            pow *= theta;
        }
        acc
    }

    #[test]
    fn hermite_matches_the_endpoints_and_their_derivatives() {
        for name in [
            "rk4",
            "euler",
            "midpoint",
            "heun",
            "ralston",
            "rk38",
            "cash_karp",
            "fehlberg2",
            "heun_euler",
        ] {
            let m = method(name);
            let p = interpolant(&m);
            assert!(p.hermite, "{name}");
            assert_eq!(p.rows.len(), if m.fsal { m.s } else { m.s + 1 }, "{name}");
            let one = BigRational::one();
            let zero = BigRational::zero();
            for (i, row) in p.rows.iter().enumerate() {
                let b = m.t.b.get(i).map_or(zero.clone(), |b| b.value.clone());
                // y(1) = y: bᵢ(1) = bᵢ (the extra stage's weight is 0).
                assert_eq!(eval(row, &one), b, "{name} b{i}(1)");
                // y'(0) = f(t, x) = k₁: bᵢ'(0) = δᵢ₁.
                let want0 = if i == 0 { one.clone() } else { zero.clone() };
                assert_eq!(deriv(row, &zero), want0, "{name} b{i}'(0)");
                // y'(1) = f(t + h, y): weight 1 on the last stage.
                let want1 = if i == p.rows.len() - 1 {
                    one.clone()
                } else {
                    zero.clone()
                };
                assert_eq!(deriv(row, &one), want1, "{name} b{i}'(1)");
            }
        }
    }
}
