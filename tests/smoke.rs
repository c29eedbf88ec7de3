use neural_ode::dfdx::nn::modules::{Linear, Tanh};
use neural_ode::dfdx::prelude::*;
use neural_ode::{neural_ode, solve, GradMethod, SolveOptions, VectorField};

#[neural_ode(solver = "dopri5")]
#[derive(Clone, Debug)]
struct Field {
    l1: Linear<2, 8, f64, Cpu>,
    act: Tanh,
    l2: Linear<8, 2, f64, Cpu>,
}

type State = (usize, Const<2>);

impl VectorField<State, f64, Cpu> for Field {
    fn eval<T: Tape<f64, Cpu>>(&self, t: f64, x: Tensor<State, f64, Cpu, T>) -> Tensor<State, f64, Cpu, T> {
        self.l2.forward(self.act.forward(self.l1.forward(x))) * (1.0 + 0.5 * t)
    }
}

#[test]
fn symplectic_matches_backprop() {
    let dev: Cpu = Cpu::seed_from_u64(0);
    let field = Field {
        l1: dev.build_module::<neural_ode::dfdx::nn::builders::Linear<2, 8>, f64>(),
        act: Tanh,
        l2: dev.build_module::<neural_ode::dfdx::nn::builders::Linear<8, 2>, f64>(),
    };
    let x0: Tensor<State, f64, Cpu> = dev.sample_normal_like(&(3, Const));
    let w: Tensor<(usize, usize, Const<2>), f64, Cpu> = dev.sample_normal_like(&(3, 3, Const));
    let mut results = Vec::new();
    for m in [GradMethod::Backprop, GradMethod::Symplectic, GradMethod::Checkpoint, GradMethod::Adjoint] {
        let opts = SolveOptions::adaptive(1e-8, 1e-8).with_grad(m);
        let sol = solve(&field, x0.leaky_trace(), &[0.0, 0.5, 1.0], &opts).unwrap();
        let loss = (sol.ys * w.clone()).sum::<Rank0, _>();
        let g = loss.backward();
        println!("{m}: {:?} {:?}", sol.stats, sol.report.get());
        results.push((g.get(&x0).as_vec(), g.get(&field.l1.weight).as_vec()));
    }
    for r in &results {
        println!("{:?}", &r.0[..3]);
        println!("{:?}", &r.1[..3]);
    }
    panic!("show");
}
