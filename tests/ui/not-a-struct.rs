use neural_ode::neural_ode;

#[neural_ode(solver = "rk4")]
#[derive(Clone, Debug)]
enum Field {
    A,
    B,
}

fn main() {}
