//! Models shared by the benches: an MLP vector field `2 → W → W → 2` with tanh (the fast
//! `neural_ode::nn::Tanh`), one type per
//! solver, generic over the width.
#![allow(dead_code)]

use neural_ode::dfdx::nn::modules::Linear;
use neural_ode::dfdx::prelude::*;
use neural_ode::nn::Tanh;
use neural_ode::{neural_ode, VectorField};

pub type State = (usize, Const<2>);

macro_rules! mlps {
    ($($name:ident => $solver:literal),* $(,)?) => {$(
        #[neural_ode(solver = $solver)]
        #[derive(Clone, Debug)]
        pub struct $name<const W: usize> {
            pub l1: Linear<2, W, f64, Cpu>,
            pub l2: Linear<W, W, f64, Cpu>,
            pub l3: Linear<W, 2, f64, Cpu>,
        }

        impl<const W: usize> VectorField<State, f64, Cpu> for $name<W> {
            fn eval<T: Tape<f64, Cpu>>(&self, _t: f64, x: Tensor<State, f64, Cpu, T>) -> Tensor<State, f64, Cpu, T> {
                self.l3.forward(Tanh.forward(self.l2.forward(Tanh.forward(self.l1.forward(x)))))
            }
        }

        impl<const W: usize> $name<W> {
            pub fn build(dev: &Cpu) -> Self {
                $name {
                    l1: dev.build_module::<neural_ode::dfdx::nn::builders::Linear<2, W>, f64>(),
                    l2: dev.build_module::<neural_ode::dfdx::nn::builders::Linear<W, W>, f64>(),
                    l3: dev.build_module::<neural_ode::dfdx::nn::builders::Linear<W, 2>, f64>(),
                }
            }
        }
    )*};
}

mlps! {
    Dopri5Mlp => "dopri5",
    Dopri8Mlp => "dopri8",
}

/// The layers of an MLP 2 → W → W → 2 with tanh, as a tuple of `Dense` layers (called one by
/// one, or fused as `nn::Mlp<DenseLayers<W, E>>`), and their builder.
pub type DenseLayers<const W: usize, E> = (
    neural_ode::nn::Dense<2, W, Tanh, E, Cpu>,
    neural_ode::nn::Dense<W, W, Tanh, E, Cpu>,
    neural_ode::nn::Dense<W, 2, neural_ode::nn::Identity, E, Cpu>,
);
pub type DenseBuild<const W: usize> = (
    neural_ode::nn::builders::Dense<2, W, Tanh>,
    neural_ode::nn::builders::Dense<W, W, Tanh>,
    neural_ode::nn::builders::Dense<W, 2, neural_ode::nn::Identity>,
);

/// Vector fields (dopri5, symplectic) whose network is one field `net` of the type given, built
/// with the builder given: `net_fields!(Name<f64>: DenseLayers<64, f64> = DenseBuild<64>)`.
#[allow(unused_macros)] // used by some of the benches that include this module
macro_rules! net_fields {
    ($($name:ident<$e:ty>: $net:ty = $build:ty),* $(,)?) => {$(
        #[neural_ode::neural_ode(solver = "dopri5", grad = "symplectic")]
        #[derive(Clone, Debug)]
        struct $name {
            net: $net,
        }

        impl neural_ode::VectorField<State, $e, Cpu> for $name {
            fn eval<T: Tape<$e, Cpu>>(&self, _t: $e, x: Tensor<State, $e, Cpu, T>) -> Tensor<State, $e, Cpu, T> {
                self.net.forward(x)
            }
        }

        impl $name {
            fn build(dev: &Cpu) -> Self {
                $name { net: dev.build_module::<$build, $e>() }
            }
        }
    )*};
}
#[allow(unused_imports)]
pub(crate) use net_fields;

/// The spiral demo's vector field (torchdiffeq's `ODEFunc`: an MLP 2 → 50 → 2 on `x³`).
#[neural_ode(solver = "dopri5")]
#[derive(Clone, Debug)]
pub struct SpiralField {
    pub l1: Linear<2, 50, f64, Cpu>,
    pub l2: Linear<50, 2, f64, Cpu>,
}

impl VectorField<State, f64, Cpu> for SpiralField {
    fn eval<T: Tape<f64, Cpu>>(
        &self,
        _t: f64,
        x: Tensor<State, f64, Cpu, T>,
    ) -> Tensor<State, f64, Cpu, T> {
        self.l2.forward(Tanh.forward(self.l1.forward(x.powi(3))))
    }
}

impl SpiralField {
    pub fn build(dev: &Cpu) -> Self {
        SpiralField {
            l1: dev.build_module::<neural_ode::dfdx::nn::builders::Linear<2, 50>, f64>(),
            l2: dev.build_module::<neural_ode::dfdx::nn::builders::Linear<50, 2>, f64>(),
        }
    }
}

/// Median over `rounds` of `time(a) / time(b)`, each timed over `reps` calls back to back; also
/// the median times of `a` and `b` per call.
pub fn paired(
    rounds: usize,
    reps: usize,
    mut a: impl FnMut(),
    mut b: impl FnMut(),
) -> (f64, f64, f64) {
    let time = |f: &mut dyn FnMut()| {
        let start = std::time::Instant::now();
        for _ in 0..reps {
            f();
        }
        start.elapsed().as_secs_f64() / reps as f64
    };
    let (mut ta, mut tb, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let x = time(&mut a);
        let y = time(&mut b);
        ta.push(x);
        tb.push(y);
        ratio.push(x / y);
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    (median(ta), median(tb), median(ratio))
}

/// A bench binary's `main`: criterion's groups, then (only on a full run: with a filter, or
/// under `cargo test --benches`, stay quick) the paired A/B table.
pub fn run(groups: fn(), paired_all: fn()) {
    groups();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
    let filtered = std::env::args().skip(1).any(|a| !a.starts_with('-'));
    let bench_mode = std::env::args().any(|a| a == "--bench");
    if bench_mode && !filtered {
        paired_all();
    }
}
