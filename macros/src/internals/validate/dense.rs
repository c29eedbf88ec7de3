//! The `[dense]` section, the continuous extension `y(t₀ + θh) = y₀ + h Σ bᵢ(θ) kᵢ`: one row
//! per stage (a method that is not FSAL may add one for `f(t + h, y)`), `bᵢ(1) = bᵢ`, and the
//! continuous extension's order conditions (Hairer, Nørsett & Wanner I, Theorem II.6.1): for
//! every tree `τ` with `|τ| ≤ p*`, `Σᵢ bᵢ(θ) Φᵢ(τ) = θ^|τ| / γ(τ)` as polynomials in `θ`,
//! coefficient by coefficient.

use num_rational::BigRational;
use num_traits::Zero;

use crate::internals::rational::Coef;
use crate::internals::tableau::{Dense, Tableau};
use crate::internals::trees::Forest;

use super::common::{is_fsal, stage_weights, values, Tolerance};

/// Adds every problem of the `[dense]` section `d` of `t` to `problems`. `a` has the right shape
/// and `g` holds the stage weights of every tree of `forest` over the method's stages.
pub fn check(
    t: &Tableau,
    a: &[Vec<Coef>],
    d: &Dense,
    forest: &Forest,
    g: &[Vec<BigRational>],
    tol: &Tolerance,
    problems: &mut Vec<String>,
) {
    let s = t.c.len();
    let mut b: Vec<BigRational> = t.b.iter().map(|x| x.value.clone()).collect();
    let fsal = is_fsal(t, a);
    // A non-FSAL method's interpolant may also use f(t + h, y): one more stage, at node 1 with
    // row b, whose weight in the step is 0 (the last of `g`'s stages).
    let extra = d.b.len() == s + 1 && !fsal;
    let extended;
    let g = if extra {
        let mut a_ext = values(a);
        a_ext.push(b.clone());
        b.push(BigRational::zero());
        extended = stage_weights(forest, &a_ext, tol);
        &extended
    } else {
        g
    };
    // From here `b` holds the weights over the same stages as `g` (0 for the extra stage).
    let b = &b;
    // Independent of the coefficients, so reported next to any problem with them.
    let above = d.order > t.order;
    if above {
        problems.push(format!(
            "`dense.order` is {} but the method has order {}: a continuous extension cannot exceed it",
            d.order, t.order
        ));
    }
    let s = b.len();
    if d.b.len() != s {
        let rows = if d.b.len() == 1 { "row" } else { "rows" };
        let expected = if fsal {
            format!("{s}: one polynomial per stage (the last stage, FSAL, is already f(t + h, y))")
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
            "`dense.b` has only empty rows: give the coefficients of θ, θ², … of each bᵢ(θ)".into(),
        );
        return;
    }
    for (i, (row, bi)) in d.b.iter().zip(b).enumerate() {
        let at_one: BigRational = row.iter().map(|x| x.value.clone()).sum();
        if !tol.close(&at_one, bi) {
            let of = if !(extra && i == s - 1) {
                format!("`b[{i}]` is {bi}")
            } else {
                "the extra stage f(t + h, y) has weight 0 in the step".to_string()
            };
            problems.push(format!(
                "`dense.b[{i}]` gives b{i}(1) = {} but {of}: the interpolant must end at the step's solution",
                tol.show(&at_one),
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
            (!tol.close(&got, &want)).then_some((tree.order, k, m, got, want))
        })
    });
    match failure {
        Some((o, k, m, got, want)) if o as u32 <= d.order => problems.push(format!(
            "`dense.order` is {} but the interpolant has order {}: for tree {}, the coefficient of θ^{m} in Σ bᵢ(θ) Φᵢ is {} but should be {want}",
            d.order,
            o - 1,
            forest.name(k),
            tol.show(&got)
        )),
        None if d.order < t.order => problems.push(format!(
            "`dense.order` is {} but the interpolant satisfies the conditions of order {}; declare the order it has",
            d.order,
            d.order + 1
        )),
        _ => {}
    }
}
