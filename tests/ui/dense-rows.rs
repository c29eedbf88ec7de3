use neural_ode::dfdx::nn::modules::Linear;
use neural_ode::dfdx::prelude::*;
use neural_ode::neural_ode;

#[neural_ode(tableau = "data/dense-rows.toml")]
#[derive(Clone, Debug)]
struct Field {
    l1: Linear<2, 2, f64, Cpu>,
}

fn main() {}
