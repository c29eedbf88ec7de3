//! A small time-dependent MLP vector field, one model type per shipped tableau.
#![allow(dead_code)]

use neural_ode::dfdx::nn::modules::Linear;
use neural_ode::dfdx::nn::tensor_collection::TensorCollection;
use neural_ode::dfdx::prelude::*;
use neural_ode::{
    neural_ode, solve, BackwardStats, ForwardStats, NeuralOde, Real, SolveOptions, VectorField,
};

pub type State = (usize, Const<2>);
pub type Stacked = (usize, usize, Const<2>);

macro_rules! fields {
    ($($name:ident => $solver:literal),* $(,)?) => {$(
        field!($name, solver = $solver);
    )*};
}

macro_rules! field {
    ($name:ident, $($attr:tt)*) => {
        #[neural_ode($($attr)*)]
        #[derive(Clone, Debug)]
        pub struct $name<E: Dtype, D: Device<E>> {
            pub l1: Linear<2, 6, E, D>,
            pub l2: Linear<6, 2, E, D>,
        }

        impl<E: Real, D: Device<E>> VectorField<State, E, D> for $name<E, D> {
            fn eval<T: Tape<E, D>>(&self, t: E, x: Tensor<State, E, D, T>) -> Tensor<State, E, D, T> {
                let scale = E::one() + t * E::from_f64_lossy(0.5);
                self.l2.forward(self.l1.forward(x).tanh()) * scale
            }

            /// The same field with each row at its own time (per-sample steps).
            #[allow(clippy::type_complexity)]
            fn eval_rows<T: Tape<E, D>>(
                &self,
                t: &[E],
                x: Tensor<State, E, D, T>,
            ) -> Result<Tensor<State, E, D, T>, Tensor<State, E, D, T>> {
                let rows = x.shape().0;
                let scale: Vec<E> = t.iter().map(|&t| E::one() + t * E::from_f64_lossy(0.5)).collect();
                let scale = x.device().tensor_from_vec(scale, (rows,)).broadcast_like(&(rows, Const::<2>));
                Ok(self.l2.forward(self.l1.forward(x).tanh()) * scale)
            }
        }

        impl common::Build for $name<f64, Cpu> {
            fn create(dev: &Cpu) -> Self {
                $name {
                    l1: dev.build_module::<neural_ode::dfdx::nn::builders::Linear<2, 6>, f64>(),
                    l2: dev.build_module::<neural_ode::dfdx::nn::builders::Linear<6, 2>, f64>(),
                }
            }
            fn grads(&self, g: &Gradients<f64, Cpu>) -> Vec<f64> {
                let mut out = g.get(&self.l1.weight).as_vec();
                out.extend(g.get(&self.l1.bias).as_vec());
                out.extend(g.get(&self.l2.weight).as_vec());
                out.extend(g.get(&self.l2.bias).as_vec());
                out
            }
            fn perturb(&mut self, i: usize, eps: f64) {
                let sizes = [12, 6, 12, 2];
                let (mut k, mut i) = (0, i);
                while i >= sizes[k] {
                    i -= sizes[k];
                    k += 1;
                }
                match k {
                    0 => common::bump(&mut self.l1.weight, i, eps),
                    1 => common::bump(&mut self.l1.bias, i, eps),
                    2 => common::bump(&mut self.l2.weight, i, eps),
                    _ => common::bump(&mut self.l2.bias, i, eps),
                }
            }
        }
    };
}

/// Construction and parameter access for the test models (f64 on the CPU).
pub trait Build: Sized {
    fn create(dev: &Cpu) -> Self;
    /// All parameter gradients, flattened in a fixed order.
    fn grads(&self, g: &Gradients<f64, Cpu>) -> Vec<f64>;
    /// Adds `eps` to parameter `i` of the flattened order.
    fn perturb(&mut self, i: usize, eps: f64);
}

pub fn bump<S: Shape>(t: &mut Tensor<S, f64, Cpu>, i: usize, eps: f64) {
    let mut v = t.as_vec();
    v[i] += eps;
    t.copy_from(&v);
}

/// Number of parameters of every test model.
pub const N_PARAMS: usize = 32;

use crate::common;

fields! {
    Euler => "euler",
    Midpoint => "midpoint",
    Heun => "heun",
    Ralston => "ralston",
    Rk4 => "rk4",
    Rk38 => "rk38",
    HeunEuler => "heun_euler",
    Fehlberg2 => "fehlberg2",
    Bosh3 => "bosh3",
    Fehlberg45 => "fehlberg45",
    CashKarp => "cash_karp",
    Dopri5 => "dopri5",
    Tsit5 => "tsit5",
    Dopri8 => "dopri8",
}

/// One test per shipped tableau, each calling `$check::<Model<f64, Cpu>>()` with that tableau's
/// model: `mod matches_backprop { use super::*; crate::every_tableau!(check_exact); }`.
#[macro_export]
macro_rules! every_tableau {
    ($check:ident) => {
        $crate::every_tableau!(@tests $check;
            euler => Euler, midpoint => Midpoint, heun => Heun, ralston => Ralston, rk4 => Rk4,
            rk38 => Rk38, heun_euler => HeunEuler, fehlberg2 => Fehlberg2, bosh3 => Bosh3,
            fehlberg45 => Fehlberg45, cash_karp => CashKarp, dopri5 => Dopri5, tsit5 => Tsit5,
            dopri8 => Dopri8);
    };
    (@tests $check:ident; $($test:ident => $model:ident),*) => {$(
        #[test]
        fn $test() {
            $check::<$crate::common::$model<f64, ::neural_ode::dfdx::prelude::Cpu>>();
        }
    )*};
}

// dopri5 with Shampine's embedded weights and no `[dense]` section: an FSAL method on the cubic
// Hermite fallback.
field!(Dopri5Shampine, tableau = "examples/dopri5_shampine.toml");

/// Central differences (step `eps`) of `loss(model, x0)` in every entry of `x0`, then in the
/// model's parameters `params` (indices of [`Build::perturb`]'s order), in that order.
pub fn central_differences<M: Build + Clone>(
    model: &M,
    x0: &Tensor<State, f64, Cpu>,
    params: impl IntoIterator<Item = usize>,
    eps: f64,
    loss: impl Fn(&M, &Tensor<State, f64, Cpu>) -> f64,
) -> Vec<f64> {
    let dev = x0.device().clone();
    let shape = *x0.shape();
    let x = x0.as_vec();
    let mut fd = Vec::new();
    for i in 0..x.len() {
        let (mut plus, mut minus) = (x.clone(), x.clone());
        plus[i] += eps;
        minus[i] -= eps;
        let lp = loss(model, &dev.tensor_from_vec(plus, shape));
        let lm = loss(model, &dev.tensor_from_vec(minus, shape));
        fd.push((lp - lm) / (2.0 * eps));
    }
    for i in params {
        let (mut plus, mut minus) = (model.clone(), model.clone());
        plus.perturb(i, eps);
        minus.perturb(i, -eps);
        fd.push((loss(&plus, x0) - loss(&minus, x0)) / (2.0 * eps));
    }
    fd
}

/// max |a − b| / max |b|.
pub fn max_rel(a: &[f64], b: &[f64]) -> f64 {
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

/// ‖a − b‖ / ‖b‖.
pub fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let num: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f64>()
        .sqrt();
    let den: f64 = b.iter().map(|y| y * y).sum::<f64>().sqrt();
    num / den
}

/// MLP 2 → 16 → 2 of fused `Dense` layers (tanh), dopri5: the memory and soak tests' model.
#[neural_ode(solver = "dopri5")]
#[derive(Clone, Debug)]
pub struct SmallDense {
    pub l1: neural_ode::nn::Dense<2, 16, neural_ode::nn::Tanh, f64, Cpu>,
    pub l2: neural_ode::nn::Dense<16, 2, neural_ode::nn::Identity, f64, Cpu>,
}

impl VectorField<State, f64, Cpu> for SmallDense {
    fn eval<T: Tape<f64, Cpu>>(
        &self,
        _t: f64,
        x: Tensor<State, f64, Cpu, T>,
    ) -> Tensor<State, f64, Cpu, T> {
        self.l2.forward(self.l1.forward(x))
    }
}

impl SmallDense {
    pub fn build(dev: &Cpu) -> Self {
        use neural_ode::nn::{builders, Identity, Tanh};
        SmallDense {
            l1: dev.build_module::<builders::Dense<2, 16, Tanh>, f64>(),
            l2: dev.build_module::<builders::Dense<16, 2, Identity>, f64>(),
        }
    }
}

/// An approximate gradient's errors at tightening tolerances: each smaller than the last, the
/// tightest below `tight`, and the loosest above `loose` (visibly approximate).
pub fn assert_converges(errors: &[f64], tight: f64, loose: f64) {
    for pair in errors.windows(2) {
        assert!(
            pair[1] < pair[0],
            "the error shrinks with the tolerance: {errors:?}"
        );
    }
    assert!(errors[errors.len() - 1] < tight, "{errors:?}");
    assert!(
        errors[0] > loose,
        "at a loose tolerance the gradient is visibly approximate: {errors:?}"
    );
}

/// The gradient of `Σ w ⊙ ys` for the initial state and every parameter, flattened.
pub fn gradient<M>(
    model: &M,
    x0: &Tensor<State, f64, Cpu>,
    w: &Tensor<Stacked, f64, Cpu>,
    times: &[f64],
    opts: &SolveOptions,
) -> Vec<f64>
where
    M: NeuralOde + VectorField<State, f64, Cpu> + TensorCollection<f64, Cpu> + Build,
{
    gradient_and_stats(model, x0, w, times, opts).0
}

/// [`gradient`], and what the forward solve and the gradient pass did.
pub fn gradient_and_stats<M>(
    model: &M,
    x0: &Tensor<State, f64, Cpu>,
    w: &Tensor<Stacked, f64, Cpu>,
    times: &[f64],
    opts: &SolveOptions,
) -> (Vec<f64>, ForwardStats, BackwardStats)
where
    M: NeuralOde + VectorField<State, f64, Cpu> + TensorCollection<f64, Cpu> + Build,
{
    let sol = solve(model, x0.leaky_trace(), times, opts).unwrap();
    let forward = sol.stats;
    let g = (sol.ys * w.clone()).sum::<Rank0, _>().backward();
    let backward = sol.report.stats().unwrap();
    let mut out = g.get(x0).as_vec();
    out.extend(model.grads(&g));
    (out, forward, backward)
}

pub fn loss_value<M>(
    model: &M,
    x0: &Tensor<State, f64, Cpu>,
    w: &Tensor<Stacked, f64, Cpu>,
    times: &[f64],
    opts: &SolveOptions,
) -> f64
where
    M: NeuralOde + VectorField<State, f64, Cpu> + TensorCollection<f64, Cpu>,
{
    let sol = solve(model, x0.clone(), times, opts).unwrap();
    (sol.ys * w.clone()).sum::<Rank0, _>().array()
}

/// A set of output times and options the gradient tests run.
pub struct Case {
    pub times: &'static [f64],
    pub opts: SolveOptions,
}

/// Fixed steps (landed and interpolated outputs, both directions) and, for adaptive methods,
/// adaptive steps.
pub fn cases(adaptive: bool) -> Vec<Case> {
    let mut cases = vec![
        Case {
            times: &[0.0, 1.0],
            opts: SolveOptions::fixed_steps(7),
        },
        Case {
            times: &[0.0, 0.3, 0.7, 1.2],
            opts: SolveOptions::fixed_size(0.1),
        },
        Case {
            times: &[1.0, 0.4, -0.5],
            opts: SolveOptions::fixed_steps(9),
        },
    ];
    if adaptive {
        cases.push(Case {
            times: &[0.0, 1.5],
            opts: SolveOptions::adaptive(1e-6, 1e-8),
        });
        cases.push(Case {
            times: &[0.0, 0.2, 0.9, 2.0],
            opts: SolveOptions::adaptive(1e-5, 1e-7),
        });
        cases.push(Case {
            times: &[0.5, -1.0],
            opts: SolveOptions::adaptive(1e-7, 1e-9),
        });
    }
    cases
}
