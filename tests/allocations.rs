//! Heap allocations per accepted step of the forward loop, counted with the counting allocator
//! (one test in this binary, so nothing else allocates concurrently). Stage states and error
//! estimates live in buffers allocated once per solve; what remains is the vector field's own
//! allocations and one buffer per accepted step for the new state (kept as the step's checkpoint).

use neural_ode::alloc::{self, CountingAllocator};
use neural_ode::dfdx::prelude::*;
use neural_ode::{neural_ode, solve, NeuralOde, RungeKutta, SolveOptions, VectorField};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator;

type State = (usize, Const<4>);

/// `x' = −0.5 x`: one new tensor per evaluation (dfdx's output).
#[neural_ode(solver = "dopri5")]
#[derive(Clone, Debug, Default)]
struct Decay;

impl VectorField<State, f64, Cpu> for Decay {
    fn eval<T: Tape<f64, Cpu>>(
        &self,
        _t: f64,
        x: Tensor<State, f64, Cpu, T>,
    ) -> Tensor<State, f64, Cpu, T> {
        x * -0.5
    }
}

fn count(f: impl FnOnce()) -> usize {
    let before = alloc::allocations();
    f();
    alloc::allocations() - before
}

#[test]
fn forward_loop_allocates_only_the_new_state_per_step() {
    let dev = Cpu::default();
    dev.disable_cache();
    let x0: Tensor<State, f64, Cpu> = dev.sample_normal_like(&(256, Const));
    let per_eval = count(|| {
        let y = Decay.eval(0.0, x0.clone());
        std::hint::black_box(y);
    });
    let stages = <Decay as NeuralOde>::Solver::STAGES;
    let mut rows = Vec::new();
    for opts in [
        SolveOptions::fixed_steps(100),
        SolveOptions::fixed_steps(300),
    ] {
        let mut stats = None;
        let n = count(|| {
            let sol = solve(&Decay, x0.clone(), &[0.0, 1.0], &opts).unwrap();
            stats = Some(sol.stats);
        });
        rows.push((stats.unwrap(), n));
    }
    let (s1, n1) = rows[0];
    let (s2, n2) = rows[1];
    let steps = (s2.accepted - s1.accepted) as f64;
    let per_step = (n2 - n1) as f64 / steps;
    let field = (s2.nfe - s1.nfe) as f64 / steps * per_eval as f64;
    let ours = per_step - field;
    println!(
        "dopri5 ({stages} stages, FSAL): {per_step:.2} allocations per accepted step = {field:.2} by the vector field ({per_eval} per evaluation) + {ours:.2} by the solver"
    );
    // A new tensor costs `per_eval` allocations (its buffer and its reference count). The solver
    // makes one per step (the new state: the next step's input and its checkpoint), plus the
    // amortised growth of the checkpoint list; stage states and error estimates make none.
    let one_tensor = per_eval as f64;
    assert!(
        (ours - one_tensor).abs() <= 0.05,
        "solver allocations per step: {ours}, one tensor: {one_tensor}"
    );
}
