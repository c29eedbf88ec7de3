//! The reversible method's memory does not grow with the number of steps: peak bytes of solve +
//! gradient at N = 100, 1000 and 10 000 fixed steps (counting global allocator; one test in
//! this file so that nothing else allocates concurrently), next to the symplectic adjoint's,
//! which stores one state per step.

use neural_ode::alloc::{self, CountingAllocator};
use neural_ode::dfdx::prelude::*;
use neural_ode::nn::{builders, Dense, Identity, Tanh};
use neural_ode::{neural_ode, solve, GradMethod, SolveOptions, VectorField};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator;

type State = (usize, Const<2>);

#[neural_ode(solver = "rk4")]
#[derive(Clone, Debug)]
struct Field {
    l1: Dense<2, 16, Tanh, f64, Cpu>,
    l2: Dense<16, 2, Identity, f64, Cpu>,
}

impl VectorField<State, f64, Cpu> for Field {
    fn eval<T: Tape<f64, Cpu>>(
        &self,
        _t: f64,
        x: Tensor<State, f64, Cpu, T>,
    ) -> Tensor<State, f64, Cpu, T> {
        self.l2.forward(self.l1.forward(x))
    }
}

/// Peak bytes above the level before the solve, over the forward and the gradient pass.
fn peak(model: &Field, x0: &Tensor<State, f64, Cpu>, steps: usize, method: GradMethod) -> usize {
    let opts = SolveOptions::fixed_steps(steps).with_grad(method);
    let grads = model.alloc_grads();
    let base = alloc::current();
    alloc::reset_peak();
    let sol = solve(model, x0.trace(grads), &[0.0, 2.0], &opts).unwrap();
    let report = sol.report.clone();
    let g = sol.ys.square().sum::<Rank0, _>().backward();
    let total = alloc::peak() - base;
    drop(g);
    let stats = report.stats().unwrap();
    if method == GradMethod::Reversible {
        let drift = stats.reconstruction_error.unwrap();
        println!("reversible, {steps} steps: reconstruction error {drift:.1e}");
        assert!(drift < 1e-9, "{drift:e}");
    }
    total
}

#[test]
fn reversible_memory_is_flat_in_the_number_of_steps() {
    assert!(alloc::is_active());
    let dev = Cpu::seed_from_u64(0);
    let model = Field {
        l1: dev.build_module::<builders::Dense<2, 16, Tanh>, f64>(),
        l2: dev.build_module::<builders::Dense<16, 2, Identity>, f64>(),
    };
    let x0: Tensor<State, f64, Cpu> = dev.sample_normal_like(&(64, Const));
    let state = 64 * 2 * 8;
    // First calls fill the layers' per-thread buffer pools: not what is measured.
    peak(&model, &x0, 10, GradMethod::Reversible);
    peak(&model, &x0, 10, GradMethod::Symplectic);
    let reversible: Vec<usize> = [100, 1000, 10_000]
        .iter()
        .map(|&n| peak(&model, &x0, n, GradMethod::Reversible))
        .collect();
    let symplectic: Vec<usize> = [100, 1000]
        .iter()
        .map(|&n| peak(&model, &x0, n, GradMethod::Symplectic))
        .collect();
    println!("reversible peak bytes at N = 100, 1000, 10000: {reversible:?}");
    println!("symplectic peak bytes at N = 100, 1000: {symplectic:?}");
    // Flat within a few percent: nothing per step is kept (a fixed grid is computed).
    let (low, high) = (reversible[0] as f64, reversible[2] as f64);
    assert!(
        high <= 1.03 * low,
        "reversible peak grew from {low} to {high} bytes"
    );
    // The symplectic adjoint stores a state per step: 900 more states for 900 more steps.
    let growth = (symplectic[1] - symplectic[0]) as f64 / (900 * state) as f64;
    assert!(growth > 0.9, "symplectic growth {growth} states per step");
}
