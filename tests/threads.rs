//! The fused layers split a batch over rayon's threads in blocks of a fixed size, so a solve and
//! its gradient come out bit-identical for every thread count: 1, 2, 3 and 8 threads against
//! each other, for batches below, at and above the block size (a partial last block), f64 and
//! f32, an activation that keeps its output (tanh) and one that keeps its input (softplus); and
//! from a thread on no pool, which shares the blocks with rayon's global pool. The same layers
//! fused into one `nn::Mlp` give the same bits.

use neural_ode::dfdx::prelude::*;
use neural_ode::nn::{self, builders, Dense, Identity, Softplus, Tanh};
use neural_ode::{neural_ode, solve, GradMethod, OdeDevice, Real, SolveOptions, VectorField};

type State = (usize, Const<2>);

#[neural_ode(solver = "dopri5")]
#[derive(Clone, Debug)]
struct Mlp<E: Dtype, D: Storage<E>> {
    l1: Dense<2, 64, Tanh, E, D>,
    l2: Dense<64, 48, Softplus, E, D>,
    l3: Dense<48, 2, Identity, E, D>,
}

impl<E: Real, D: OdeDevice<E>> VectorField<State, E, D> for Mlp<E, D> {
    fn eval<T: Tape<E, D>>(&self, _t: E, x: Tensor<State, E, D, T>) -> Tensor<State, E, D, T> {
        self.l3.forward(self.l2.forward(self.l1.forward(x)))
    }
}

/// The same layers fused into one `nn::Mlp` (clones: the same tensors, so the same gradient
/// keys).
#[neural_ode(solver = "dopri5")]
#[derive(Clone, Debug)]
struct Fused<E: Dtype, D: Storage<E>> {
    net: nn::Mlp<Layers<E, D>>,
}

/// The layers of `Mlp`, as a tuple.
type Layers<E, D> = (
    Dense<2, 64, Tanh, E, D>,
    Dense<64, 48, Softplus, E, D>,
    Dense<48, 2, Identity, E, D>,
);

impl<E: Real, D: OdeDevice<E>> VectorField<State, E, D> for Fused<E, D> {
    fn eval<T: Tape<E, D>>(&self, _t: E, x: Tensor<State, E, D, T>) -> Tensor<State, E, D, T> {
        self.net.forward(x)
    }
}

/// The bits of the outputs, the initial state's gradient and every parameter's gradient, with
/// the layers one by one or (`fused`) as one `nn::Mlp`.
fn bits<E: Real + Into<f64>>(
    model: &Mlp<E, Cpu>,
    rows: usize,
    grad: GradMethod,
    fused: bool,
) -> Vec<u64>
where
    Cpu: OdeDevice<E>,
{
    let values = (0..2 * rows)
        .map(|k| E::from_f64_lossy((0.37 * k as f64).sin() * 1.5))
        .collect();
    let x0: Tensor<State, E, Cpu> = Cpu::default().tensor_from_vec(values, (rows, Const));
    let opts = SolveOptions::fixed_steps(4).with_grad(grad);
    let times = [0.0, 0.5, 1.0].map(E::from_f64_lossy);
    let sol = if fused {
        let net = nn::Mlp((model.l1.clone(), model.l2.clone(), model.l3.clone()));
        solve(&Fused { net }, x0.leaky_trace(), &times, &opts).unwrap()
    } else {
        solve(model, x0.leaky_trace(), &times, &opts).unwrap()
    };
    let ys = sol.ys.retaped::<NoneTape>().as_vec();
    let g = sol.ys.square().sum::<Rank0, _>().backward();
    sol.report.stats().unwrap();
    let mut out: Vec<f64> = ys.into_iter().map(Into::into).collect();
    for v in [
        g.get(&x0).as_vec(),
        g.get(&model.l1.weight).as_vec(),
        g.get(&model.l1.bias).as_vec(),
        g.get(&model.l2.weight).as_vec(),
        g.get(&model.l2.bias).as_vec(),
        g.get(&model.l3.weight).as_vec(),
        g.get(&model.l3.bias).as_vec(),
    ] {
        out.extend(v.into_iter().map(Into::into));
    }
    out.into_iter().map(f64::to_bits).collect()
}

fn on_threads<R: Send>(n: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .unwrap()
        .install(f)
}

fn check<E: Real + Into<f64>>()
where
    Cpu: OdeDevice<E>,
{
    let dev = Cpu::seed_from_u64(5);
    let model = Mlp {
        l1: dev.build_module::<builders::Dense<2, 64, Tanh>, E>(),
        l2: dev.build_module::<builders::Dense<64, 48, Softplus>, E>(),
        l3: dev.build_module::<builders::Dense<48, 2, Identity>, E>(),
    };
    for rows in [16, 64, 65, 200, 512] {
        for grad in [GradMethod::Symplectic, GradMethod::Backprop] {
            let one = on_threads(1, || bits(&model, rows, grad, false));
            for n in [2, 3, 8] {
                let many = on_threads(n, || bits(&model, rows, grad, false));
                assert!(
                    one == many,
                    "{rows} rows, {grad:?}: 1 and {n} threads differ in {} of {} values",
                    one.iter().zip(&many).filter(|(a, b)| a != b).count(),
                    one.len()
                );
            }
            // From a thread on no pool, sharing the work with rayon's global pool (three threads
            // here, or whatever another test of this binary set up first).
            let outside =
                std::thread::scope(|s| s.spawn(|| bits(&model, rows, grad, false)).join());
            assert!(
                outside.as_ref().is_ok_and(|b| *b == one),
                "{rows} rows, {grad:?}: a thread on no pool and 1 thread differ"
            );
            // The layers fused into one `nn::Mlp`: the same bits, on any thread count.
            for n in [1, 3] {
                let fused = on_threads(n, || bits(&model, rows, grad, true));
                assert!(
                    one == fused,
                    "{rows} rows, {grad:?}: nn::Mlp on {n} threads differs from the layers"
                );
            }
            let fused = std::thread::scope(|s| s.spawn(|| bits(&model, rows, grad, true)).join());
            assert!(
                fused.as_ref().is_ok_and(|b| *b == one),
                "{rows} rows, {grad:?}: nn::Mlp on a thread on no pool differs from the layers"
            );
        }
    }
}

/// The global pool, for the threads on no pool: three threads, whatever the machine.
fn global_pool() {
    // An error means another test built it first, which is fine.
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build_global();
}

#[test]
fn gradients_are_bit_identical_for_every_thread_count_f64() {
    global_pool();
    check::<f64>();
}

#[test]
fn gradients_are_bit_identical_for_every_thread_count_f32() {
    global_pool();
    check::<f32>();
}
