// A field that holds no parameters must be marked `#[neural_ode(skip)]`.
use neural_ode::dfdx::nn::modules::Linear;
use neural_ode::dfdx::prelude::*;
use neural_ode::{neural_ode, solve, SolveOptions, VectorField};

type State = (usize, Const<2>);

#[neural_ode(solver = "rk4")]
#[derive(Clone, Debug)]
struct Field {
    l1: Linear<2, 2, f64, Cpu>,
    scale: f64,
}

impl VectorField<State, f64, Cpu> for Field {
    fn eval<T: Tape<f64, Cpu>>(&self, _t: f64, x: Tensor<State, f64, Cpu, T>) -> Tensor<State, f64, Cpu, T> {
        self.l1.forward(x) * self.scale
    }
}

fn main() {
    let dev = Cpu::default();
    let field = Field {
        l1: dev.build_module::<neural_ode::dfdx::nn::builders::Linear<2, 2>, f64>(),
        scale: 0.5,
    };
    let x0: Tensor<State, f64, Cpu> = dev.zeros_like(&(3, Const));
    let _ = solve(&field, x0, &[0.0, 1.0], &SolveOptions::fixed_steps(2));
}
