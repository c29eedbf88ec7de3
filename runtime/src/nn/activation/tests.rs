//! The activation modules against dfdx's own operations: values and gradients, in models and
//! in `f32`.

use super::*;

/// Forward values and the gradient of `Σ w ⊙ f(x)` against dfdx's own composition.
fn check<M>(
    m: M,
    exact: fn(f64) -> f64,
    reference: impl Fn(
        Tensor<Rank1<9>, f64, Cpu, OwnedTape<f64, Cpu>>,
    ) -> Tensor<Rank1<9>, f64, Cpu, OwnedTape<f64, Cpu>>,
) where
    M: Module<
            Tensor<Rank1<9>, f64, Cpu, OwnedTape<f64, Cpu>>,
            Output = Tensor<Rank1<9>, f64, Cpu, OwnedTape<f64, Cpu>>,
        > + Module<Tensor<Rank1<9>, f64, Cpu>, Output = Tensor<Rank1<9>, f64, Cpu>>,
{
    let dev = Cpu::default();
    let x: Tensor<Rank1<9>, f64, Cpu> =
        dev.tensor([-30.0, -5.0, -1.5, -0.3, -0.05, 0.2, 1.0, 4.0, 25.0]);
    let w: Tensor<Rank1<9>, f64, Cpu> =
        dev.tensor([0.5, -1.0, 2.0, 1.5, -0.7, 0.3, 1.1, -2.0, 0.9]);
    let fast = m.forward(x.clone()).as_vec();
    let slow: Vec<f64> = x.as_vec().into_iter().map(exact).collect();
    for (a, b) in fast.iter().zip(&slow) {
        assert!(
            (a - b).abs() <= 4.0 * f64::EPSILON * b.abs().max(1e-300),
            "{a} vs {b}"
        );
    }
    let g_fast = (m.forward(x.leaky_trace()) * w.clone())
        .sum::<Rank0, _>()
        .backward();
    let g_slow = (reference(x.leaky_trace()) * w.clone())
        .sum::<Rank0, _>()
        .backward();
    for (a, b) in g_fast.get(&x).as_vec().iter().zip(g_slow.get(&x).as_vec()) {
        assert!((a - b).abs() <= 1e-14 * (1.0 + b.abs()), "{a} vs {b}");
    }
}

#[test]
fn tanh_matches_dfdx() {
    check(Tanh, f64::tanh, |x| x.tanh());
}

#[test]
fn sigmoid_matches_dfdx() {
    check(Sigmoid, |x| 1.0 / (1.0 + (-x).exp()), |x| x.sigmoid());
}

#[test]
fn softplus_matches_a_stable_composition() {
    check(
        Softplus,
        |x| x.max(0.0) + (-x.abs()).exp().ln_1p(),
        |x| {
            let tail = (x.with_empty_tape().abs().negate().exp() + 1.0).ln();
            x.relu() + tail
        },
    );
}

#[test]
fn silu_matches_dfdx() {
    check(
        Silu,
        |x| x / (1.0 + (-x).exp()),
        |x| {
            let s = x.with_empty_tape().sigmoid();
            x * s
        },
    );
}

#[test]
fn works_in_a_model_tuple_and_in_f32() {
    let dev = Cpu::default();
    type Net = (
        dfdx::nn::builders::Linear<3, 4>,
        Tanh,
        dfdx::nn::builders::Linear<4, 2>,
        Silu,
    );
    let net = dev.build_module::<Net, f32>();
    let x: Tensor<(usize, Const<3>), f32, Cpu> = dev.sample_normal_like(&(5, Const));
    let g = net
        .forward(x.leaky_trace())
        .square()
        .sum::<Rank0, _>()
        .backward();
    assert!(g.get(&net.0.weight).as_vec().iter().any(|v| *v != 0.0));
    assert_eq!(net.num_trainable_params(), 3 * 4 + 4 + 4 * 2 + 2);
}
