//! Adds a Runge–Kutta scheme from a TOML file (`examples/ssprk3.toml`, not shipped in `macros/tableaux/`) and trains a neural ODE with it; the field takes time as an input (`neural_ode::nn::with_time`).
//!
//! The attribute reads and checks the file at compile time (try breaking a coefficient), and
//! generates the scheme's forward step and its symplectic-partner backward step. Run with
//! `cargo run --release --example custom_tableau -- [--iters 300]`.

mod common;

use neural_ode::dfdx::optim::{Adam, AdamConfig, Optimizer};
use neural_ode::dfdx::prelude::*;
use neural_ode::nn::{builders, with_time, Dense, Identity, Tanh};
use neural_ode::{neural_ode, solve, NeuralOde, RungeKutta, SolveOptions, VectorField};

type State = (usize, Const<2>);

/// The model: an MLP vector field integrated with the scheme from the file.
#[neural_ode(tableau = "examples/ssprk3.toml", grad = "symplectic")]
#[derive(Clone, Debug)]
struct Field {
    // The first layer sees (x₁, x₂, t): `with_time` appends the time as a feature column.
    l1: Dense<3, 32, Tanh, f64, Cpu>,
    l2: Dense<32, 2, Identity, f64, Cpu>,
}

impl VectorField<State, f64, Cpu> for Field {
    fn eval<T: Tape<f64, Cpu>>(
        &self,
        t: f64,
        x: Tensor<State, f64, Cpu, T>,
    ) -> Tensor<State, f64, Cpu, T> {
        self.l2.forward(self.l1.forward(with_time(x, t)))
    }
}

/// The system that generates the data: a damped rotation, solved with a shipped method.
#[neural_ode(solver = "dopri5")]
#[derive(Clone, Debug)]
struct Truth {
    #[neural_ode(skip)]
    a: Tensor<Rank2<2, 2>, f64, Cpu>,
}

impl VectorField<State, f64, Cpu> for Truth {
    fn eval<T: Tape<f64, Cpu>>(
        &self,
        _t: f64,
        x: Tensor<State, f64, Cpu, T>,
    ) -> Tensor<State, f64, Cpu, T> {
        x.matmul(self.a.clone())
    }
}

fn main() {
    let args = common::Args::parse(&["iters"], "usage: custom_tableau [--iters N]");
    let iters: usize = args.get("iters", 300);
    type R = <Field as NeuralOde>::Solver;
    println!(
        "scheme from examples/ssprk3.toml: {} (`{}`), order {}, {} stages",
        R::TITLE,
        R::NAME,
        R::ORDER,
        R::STAGES
    );
    println!("  c = {:?}\n  b = {:?}", R::C, R::B);

    let dev = Cpu::seed_from_u64(1);
    let truth = Truth {
        a: dev.tensor([[-0.1, 1.0], [-1.0, -0.1]]),
    };
    let times: Vec<f64> = (0..21).map(|i| i as f64 * 0.25).collect();
    let x0: Tensor<State, f64, Cpu> = dev.sample_normal_like(&(64, Const));
    let data = solve(
        &truth,
        x0.clone(),
        &times,
        &SolveOptions::adaptive(1e-10, 1e-10),
    )
    .expect("data")
    .ys;

    let mut model = Field {
        l1: dev.build_module::<builders::Dense<3, 32, Tanh>, f64>(),
        l2: dev.build_module::<builders::Dense<32, 2, Identity>, f64>(),
    };
    let mut opt = Adam::new(
        &model,
        AdamConfig {
            lr: 1e-2,
            ..Default::default()
        },
    );
    // SSPRK3 has no error estimate: fixed steps, four per output interval.
    let opts = SolveOptions::fixed_size(0.0625);
    let mut first = None;
    let mut last = 0.0;
    for it in 0..iters {
        let grads = model.alloc_grads();
        let sol = solve(&model, x0.trace(grads), &times, &opts).expect("solve");
        let loss = (sol.ys - data.clone()).square().mean::<Rank0, _>();
        last = loss.array();
        first.get_or_insert(last);
        let grads = loss.backward();
        sol.report
            .get()
            .expect("gradient pass ran")
            .expect("gradient pass succeeded");
        opt.update(&mut model, &grads).expect("update");
        if it % (iters / 10).max(1) == 0 {
            println!(
                "iteration {it:>4}: loss {last:.5} ({} steps, {} evaluations forward)",
                sol.stats.accepted, sol.stats.nfe
            );
        }
    }
    let first = first.unwrap_or(last);
    println!(
        "loss {first:.5} -> {last:.5} ({:.0}x lower) with the custom scheme",
        first / last
    );
}
