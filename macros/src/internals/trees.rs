//! Rooted trees and the Runge–Kutta order conditions (Hairer, Nørsett & Wanner I, §II.2).
//!
//! A method with weights `b` has order `p` when `Φ(t) = 1/γ(t)` for every rooted tree `t`
//! with at most `p` vertices, where `Φ(t) = bᵀ g(t)`, `g(τ) = 1` and
//! `g([t1, …, tm]) = (A g(t1)) ∘ … ∘ (A g(tm))` (componentwise product), and
//! `γ([t1, …, tm]) = |t| γ(t1) ⋯ γ(tm)`.

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{One, Zero};

/// The arithmetic that elementary weights are computed in.
pub trait Scalar: Clone {
    fn zero() -> Self;
    fn one() -> Self;
    fn add(&self, other: &Self) -> Self;
    fn mul(&self, other: &Self) -> Self;
}

impl Scalar for BigRational {
    fn zero() -> Self {
        Zero::zero()
    }
    fn one() -> Self {
        One::one()
    }
    fn add(&self, other: &Self) -> Self {
        self + other
    }
    fn mul(&self, other: &Self) -> Self {
        self * other
    }
}

/// Fixed point with [`Fixed::BITS`] fractional bits (about 90 decimal digits): for tableaux whose
/// published numbers are approximations checked to a tolerance, where exact rationals with huge
/// denominators would only cost time (dopri8's order-9 trees take seconds exactly).
#[derive(Clone, Debug, PartialEq)]
pub struct Fixed(pub BigInt);

impl Fixed {
    pub const BITS: usize = 300;

    pub fn from_rational(q: &BigRational) -> Fixed {
        Fixed((q.numer() << Self::BITS) / q.denom())
    }

    pub fn to_rational(&self) -> BigRational {
        BigRational::new(self.0.clone(), BigInt::one() << Self::BITS)
    }
}

impl Scalar for Fixed {
    fn zero() -> Self {
        Fixed(Zero::zero())
    }
    fn one() -> Self {
        Fixed(BigInt::one() << Self::BITS)
    }
    fn add(&self, other: &Self) -> Self {
        Fixed(&self.0 + &other.0)
    }
    fn mul(&self, other: &Self) -> Self {
        Fixed((&self.0 * &other.0) >> Self::BITS)
    }
}

/// One rooted tree: the indices (into [`Forest::trees`]) of its root's children, sorted.
#[derive(Clone, Debug)]
pub struct Tree {
    pub order: usize,
    pub children: Vec<usize>,
    pub gamma: BigRational,
}

/// All rooted trees up to some order, smallest first.
#[derive(Debug)]
pub struct Forest {
    pub trees: Vec<Tree>,
}

impl Forest {
    /// Every rooted tree with at most `max_order` vertices (1, 1, 2, 4, 9, 20, 48, 115, 286, …).
    pub fn up_to(max_order: usize) -> Forest {
        let mut trees: Vec<Tree> = Vec::new();
        for order in 1..=max_order {
            let mut lists = Vec::new();
            children_lists(&trees, order - 1, 0, &mut Vec::new(), &mut lists);
            for children in lists {
                let mut gamma = BigRational::from_integer(order.into());
                for &c in &children {
                    gamma *= &trees[c].gamma;
                }
                trees.push(Tree {
                    order,
                    children,
                    gamma,
                });
            }
        }
        Forest { trees }
    }

    /// Bracket notation: `τ`, `[τ]`, `[τ²]`, `[[τ]τ]`, …
    pub fn name(&self, i: usize) -> String {
        let t = &self.trees[i];
        if t.children.is_empty() {
            return "τ".into();
        }
        let mut out = String::from("[");
        let mut k = 0;
        while k < t.children.len() {
            let c = t.children[k];
            let run = t.children[k..].iter().take_while(|&&x| x == c).count();
            out += &self.name(c);
            if run > 1 {
                out += &superscript(run);
            }
            k += run;
        }
        out + "]"
    }

    /// `g(t)` for every tree, for the matrix `a` (rows may be shorter than `s`: missing
    /// entries are zero).
    pub fn stage_weights<T: Scalar>(&self, a: &[Vec<T>]) -> Vec<Vec<T>> {
        let s = a.len();
        let mut g: Vec<Vec<T>> = Vec::with_capacity(self.trees.len());
        let mut ag: Vec<Vec<T>> = Vec::with_capacity(self.trees.len());
        for t in &self.trees {
            let mut gt = vec![T::one(); s];
            for &c in &t.children {
                for (x, y) in gt.iter_mut().zip(&ag[c]) {
                    *x = x.mul(y);
                }
            }
            let agt: Vec<T> = a
                .iter()
                .map(|row| {
                    row.iter()
                        .zip(&gt)
                        .fold(T::zero(), |acc, (x, y)| acc.add(&x.mul(y)))
                })
                .collect();
            g.push(gt);
            ag.push(agt);
        }
        g
    }
}

/// Non-decreasing lists of tree indices (starting at `min`) whose orders
/// sum to `remaining`.
fn children_lists(
    trees: &[Tree],
    remaining: usize,
    min: usize,
    cur: &mut Vec<usize>,
    out: &mut Vec<Vec<usize>>,
) {
    if remaining == 0 {
        out.push(cur.clone());
        return;
    }
    for i in min..trees.len() {
        if trees[i].order <= remaining {
            cur.push(i);
            children_lists(trees, remaining - trees[i].order, i, cur, out);
            cur.pop();
        }
    }
}

fn superscript(n: usize) -> String {
    const DIGITS: [char; 10] = ['⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'];
    n.to_string()
        .chars()
        .map(|d| DIGITS[d as usize - '0' as usize])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_rooted_trees() {
        let f = Forest::up_to(9);
        let mut counts = [0usize; 10];
        for t in &f.trees {
            counts[t.order] += 1;
        }
        assert_eq!(&counts[1..], &[1, 1, 2, 4, 9, 20, 48, 115, 286]);
    }

    #[test]
    fn names_and_densities() {
        let f = Forest::up_to(4);
        let names: Vec<String> = (0..f.trees.len()).map(|i| f.name(i)).collect();
        assert_eq!(
            names,
            ["τ", "[τ]", "[τ²]", "[[τ]]", "[τ³]", "[τ[τ]]", "[[τ²]]", "[[[τ]]]"]
        );
        let gammas: Vec<String> = f.trees.iter().map(|t| t.gamma.to_string()).collect();
        assert_eq!(gammas, ["1", "2", "3", "6", "4", "8", "12", "24"]);
    }
}
