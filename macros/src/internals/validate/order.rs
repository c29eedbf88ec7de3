//! The rooted-tree order conditions (Hairer, Nørsett & Wanner I, §II.2) of the propagated and
//! the embedded solution: each must have exactly its declared order.

use num_rational::BigRational;

use crate::internals::tableau::Tableau;
use crate::internals::trees::Forest;

use super::common::Tolerance;

/// The highest order whose conditions are checked.
pub const MAX_ORDER: u32 = 8;

/// Declared orders above [`MAX_ORDER`]: their conditions would not be checked.
pub fn check_declared(t: &Tableau, problems: &mut Vec<String>) {
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
}

/// The order conditions of `b` (and `b_hat`) against the declared orders, given the stage
/// weights `g` of every tree of `forest` (which holds the trees up to one order above the
/// highest declared). Reports the first tree, by size, whose condition fails, or an order
/// declared lower than the weights have.
pub fn check(
    t: &Tableau,
    forest: &Forest,
    g: &[Vec<BigRational>],
    tol: &Tolerance,
    problems: &mut Vec<String>,
) {
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
            (!tol.close(&phi, &target)).then_some((tree.order, k, phi, target))
        });
        match failure {
            Some((o, k, phi, target)) if (o as u32) <= declared => problems.push(format!(
                "`{key}` is {declared} but `{wkey}` has order {}: the condition for tree {} fails, Φ = {} but 1/γ = {target}",
                o - 1,
                forest.name(k),
                tol.show(&phi),
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
}
