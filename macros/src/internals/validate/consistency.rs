//! Consistency: every row of `a` sums to its node, and the weights sum to one (and an embedded
//! solution differs from the propagated one, or its error estimate would vanish).

use num_rational::BigRational;

use crate::internals::rational::Coef;
use crate::internals::tableau::Tableau;

use super::common::Tolerance;

/// Adds every consistency problem of `t` (with `a` of the right shape) to `problems`.
pub fn check(t: &Tableau, a: &[Vec<Coef>], tol: &Tolerance, problems: &mut Vec<String>) {
    for (i, (row, c)) in a.iter().zip(&t.c).enumerate() {
        let sum: BigRational = row.iter().map(|x| x.value.clone()).sum();
        if !tol.close(&sum, &c.value) {
            problems.push(format!(
                "row sum of `a[{i}]` is {sum} but `c[{i}]` is {}",
                c.value
            ));
        }
    }
    let one = BigRational::from_integer(1.into());
    let weight_sum = |w: &[Coef]| w.iter().map(|x| x.value.clone()).sum::<BigRational>();
    let sb = weight_sum(&t.b);
    if !tol.close(&sb, &one) {
        problems.push(format!("weights `b` sum to {sb}, expected 1"));
    }
    if let Some(bh) = &t.b_hat {
        let sbh = weight_sum(bh);
        if !tol.close(&sbh, &one) {
            problems.push(format!("weights `b_hat` sum to {sbh}, expected 1"));
        }
        if bh.iter().zip(&t.b).all(|(x, y)| x.value == y.value) {
            problems.push("`b_hat` equals `b`, so the error estimate would always be zero".into());
        }
    }
}
