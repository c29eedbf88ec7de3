//! What the checks share: the tolerance they compare with, FSAL, stage weights, wording. A
//! leaf of `validate` (it imports only the tableau IR, rationals and trees).

use num_rational::BigRational;
use num_traits::{One, Signed, Zero};

use crate::internals::rational::{to_f64, Coef};
use crate::internals::tableau::Tableau;
use crate::internals::trees::{Fixed, Forest};

/// How computed values are compared with their targets: exactly, or (when some coefficient was
/// written as a decimal, or the file sets a `tolerance`) within a small absolute tolerance.
pub struct Tolerance {
    tol: BigRational,
    decimal: bool,
}

impl Tolerance {
    pub fn of(t: &Tableau) -> Tolerance {
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
        Tolerance { tol, decimal }
    }

    pub fn close(&self, x: &BigRational, y: &BigRational) -> bool {
        (x - y).abs() <= self.tol
    }

    /// Whether values must agree exactly.
    pub fn exact(&self) -> bool {
        self.tol.is_zero()
    }

    /// A computed value for a message: exact, or in exponent form for decimal tableaux.
    pub fn show(&self, x: &BigRational) -> String {
        if self.decimal {
            format!("{:.6e}", to_f64(x))
        } else {
            x.to_string()
        }
    }
}

/// Whether the last stage is `f(t + h, y)`: node 1, row `b`, weight 0 (first same as last).
pub fn is_fsal(t: &Tableau, a: &[Vec<Coef>]) -> bool {
    let s = t.c.len();
    s > 1
        && t.c[s - 1].value.is_one()
        && a[s - 1].iter().zip(&t.b).all(|(x, y)| x.value == y.value)
        && t.b[s - 1].is_zero()
}

/// The exact values of a matrix of coefficients.
pub fn values(a: &[Vec<Coef>]) -> Vec<Vec<BigRational>> {
    a.iter()
        .map(|row| row.iter().map(|x| x.value.clone()).collect())
        .collect()
}

/// The stage weights `Φᵢ(τ)` of every tree of `forest` for the matrix `a`. Exact tableaux: exact
/// rationals. Approximate ones (decimals, or a `tolerance`): fixed point with ~90 digits, far
/// below any tolerance, and fast.
pub fn stage_weights(
    forest: &Forest,
    a: &[Vec<BigRational>],
    tol: &Tolerance,
) -> Vec<Vec<BigRational>> {
    if tol.exact() {
        forest.stage_weights(a)
    } else {
        let a_fixed: Vec<Vec<Fixed>> = a
            .iter()
            .map(|row| row.iter().map(Fixed::from_rational).collect())
            .collect();
        forest
            .stage_weights(&a_fixed)
            .iter()
            .map(|v| v.iter().map(Fixed::to_rational).collect())
            .collect()
    }
}

/// `entry` or `entries`.
pub fn entries(n: usize) -> &'static str {
    if n == 1 {
        "entry"
    } else {
        "entries"
    }
}
