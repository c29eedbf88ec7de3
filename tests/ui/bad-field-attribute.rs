use neural_ode::dfdx::nn::modules::Linear;
use neural_ode::dfdx::prelude::*;
use neural_ode::neural_ode;

#[neural_ode(solver = "rk4")]
#[derive(Clone, Debug)]
struct Field {
    #[neural_ode(foo)]
    l1: Linear<2, 2, f64, Cpu>,
}

fn main() {}
