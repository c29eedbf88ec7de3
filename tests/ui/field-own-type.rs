// A field of the user's own type that holds no parameters must be marked `#[neural_ode(skip)]`:
// the error is at the field, and names the fix.
use neural_ode::dfdx::nn::modules::Linear;
use neural_ode::dfdx::prelude::*;
use neural_ode::{neural_ode, VectorField};

type State = (usize, Const<2>);

#[derive(Clone, Debug)]
struct Config {
    scale: f64,
}

#[neural_ode(solver = "rk4")]
#[derive(Clone, Debug)]
struct Field {
    l1: Linear<2, 2, f64, Cpu>,
    cfg: Config,
}

impl VectorField<State, f64, Cpu> for Field {
    fn eval<T: Tape<f64, Cpu>>(&self, _t: f64, x: Tensor<State, f64, Cpu, T>) -> Tensor<State, f64, Cpu, T> {
        self.l1.forward(x) * self.cfg.scale
    }
}

fn main() {}
