//! `Dense` against dfdx's own `Linear` + activation: values, every cotangent (dfdx's autodiff
//! is the independent reference), finite differences, and the dfdx plumbing (collections,
//! optimisers, safetensors).

use super::*;
use crate::nn::{Sigmoid, Silu, Softplus, Tanh};
use dfdx::nn::modules;
use dfdx::optim::{Adam, AdamConfig, Optimizer};

type X<B, const I: usize> = (B, Const<I>);

/// The same layer as dfdx `Linear` (weights copied).
fn linear_like<const I: usize, const O: usize, A>(
    dense: &Dense<I, O, A, f64, Cpu>,
) -> modules::Linear<I, O, f64, Cpu> {
    let dev = Cpu::default();
    let mut lin = dev.build_module::<dfdx::nn::builders::Linear<I, O>, f64>();
    lin.weight.copy_from(&dense.weight.as_vec());
    lin.bias.copy_from(&dense.bias.as_vec());
    lin
}

fn assert_close(a: &[f64], b: &[f64], tol: f64, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= tol * (1.0 + y.abs()),
            "{what}[{i}]: {x} vs {y}"
        );
    }
}

/// Forward values and the cotangents of `Σ w ⊙ layer(x)` for x, W and b, against dfdx's
/// composition `act(Linear(x))` with the same weights.
fn check_against_dfdx<A, const I: usize, const O: usize>(
    rows: usize,
    reference_act: impl Fn(
        Tensor<X<usize, O>, f64, Cpu, OwnedTape<f64, Cpu>>,
    ) -> Tensor<X<usize, O>, f64, Cpu, OwnedTape<f64, Cpu>>,
) where
    A: Activation,
{
    let dev = Cpu::seed_from_u64(rows as u64 + I as u64);
    let dense = dev.build_module::<builders::Dense<I, O, A>, f64>();
    let lin = linear_like(&dense);
    let x: Tensor<X<usize, I>, f64, Cpu> = dev.sample_normal_like(&(rows, Const));
    let x = x * 2.0;
    let w: Tensor<X<usize, O>, f64, Cpu> = dev.sample_normal_like(&(rows, Const));

    let y_fast = dense.forward(x.clone());
    let y_ref = reference_act(lin.forward(x.leaky_trace())).retaped::<NoneTape>();
    let what = format!("{:?} {rows}x{I}->{O}", A::default());
    assert_close(
        &y_fast.as_vec(),
        &y_ref.as_vec(),
        1e-14,
        &format!("{what} forward"),
    );

    let g_fast = (dense.forward(x.leaky_trace()) * w.clone())
        .sum::<Rank0, _>()
        .backward();
    let g_ref = (reference_act(lin.forward(x.leaky_trace())) * w.clone())
        .sum::<Rank0, _>()
        .backward();
    assert_close(
        &g_fast.get(&x).as_vec(),
        &g_ref.get(&x).as_vec(),
        1e-13,
        &format!("{what} x̄"),
    );
    assert_close(
        &g_fast.get(&dense.weight).as_vec(),
        &g_ref.get(&lin.weight).as_vec(),
        1e-13,
        &format!("{what} W̄"),
    );
    assert_close(
        &g_fast.get(&dense.bias).as_vec(),
        &g_ref.get(&lin.bias).as_vec(),
        1e-13,
        &format!("{what} b̄"),
    );
}

macro_rules! shapes {
    ($a:ty, $reference:expr) => {
        check_against_dfdx::<$a, 2, 64>(37, $reference);
        check_against_dfdx::<$a, 64, 64>(37, $reference);
        check_against_dfdx::<$a, 64, 2>(37, $reference);
        check_against_dfdx::<$a, 7, 5>(3, $reference);
        check_against_dfdx::<$a, 3, 9>(1, $reference);
    };
}

#[test]
fn identity_matches_linear() {
    shapes!(Identity, |y| y);
}

#[test]
fn tanh_matches_linear_then_tanh() {
    shapes!(Tanh, |y| y.tanh());
}

#[test]
fn sigmoid_matches_linear_then_sigmoid() {
    shapes!(Sigmoid, |y| y.sigmoid());
}

#[test]
fn softplus_matches_linear_then_softplus() {
    shapes!(Softplus, |y| {
        let tail = (y.with_empty_tape().abs().negate().exp() + 1.0).ln();
        y.relu() + tail
    });
}

#[test]
fn silu_matches_linear_then_silu() {
    shapes!(Silu, |y| {
        let s = y.with_empty_tape().sigmoid();
        y * s
    });
}

/// Central differences of `L(θ) = Σ w ⊙ layer(x)` in a few weights, biases and inputs.
#[test]
fn cotangents_match_finite_differences() {
    let dev = Cpu::seed_from_u64(7);
    let mut layer = dev.build_module::<builders::Dense<5, 64, Silu>, f64>();
    let x: Tensor<Rank2<6, 5>, f64, Cpu> = dev.sample_normal();
    let w: Tensor<Rank2<6, 64>, f64, Cpu> = dev.sample_normal();
    let loss = |layer: &Dense<5, 64, Silu, f64, Cpu>, x: &Tensor<Rank2<6, 5>, f64, Cpu>| {
        (layer.forward(x.clone()) * w.clone())
            .sum::<Rank0, _>()
            .array()
    };
    let g = (layer.forward(x.leaky_trace()) * w.clone())
        .sum::<Rank0, _>()
        .backward();
    let (gw, gb, gx) = (
        g.get(&layer.weight).as_vec(),
        g.get(&layer.bias).as_vec(),
        g.get(&x).as_vec(),
    );
    let eps = 1e-6;
    for idx in [0, 7, 100, 319] {
        let mut v = layer.weight.as_vec();
        let base = v[idx];
        v[idx] = base + eps;
        layer.weight.copy_from(&v);
        let up = loss(&layer, &x);
        v[idx] = base - eps;
        layer.weight.copy_from(&v);
        let down = loss(&layer, &x);
        v[idx] = base;
        layer.weight.copy_from(&v);
        let fd = (up - down) / (2.0 * eps);
        assert!(
            (fd - gw[idx]).abs() < 1e-7 * (1.0 + fd.abs()),
            "W̄[{idx}]: {} vs {fd}",
            gw[idx]
        );
    }
    for idx in [0, 63] {
        let mut v = layer.bias.as_vec();
        let base = v[idx];
        v[idx] = base + eps;
        layer.bias.copy_from(&v);
        let up = loss(&layer, &x);
        v[idx] = base - eps;
        layer.bias.copy_from(&v);
        let down = loss(&layer, &x);
        v[idx] = base;
        layer.bias.copy_from(&v);
        let fd = (up - down) / (2.0 * eps);
        assert!(
            (fd - gb[idx]).abs() < 1e-7 * (1.0 + fd.abs()),
            "b̄[{idx}]: {} vs {fd}",
            gb[idx]
        );
    }
    for idx in [0, 13, 29] {
        let mut v = x.as_vec();
        let base = v[idx];
        let mut xp = x.clone();
        v[idx] = base + eps;
        xp.copy_from(&v);
        let up = loss(&layer, &xp);
        v[idx] = base - eps;
        xp.copy_from(&v);
        let down = loss(&layer, &xp);
        let fd = (up - down) / (2.0 * eps);
        assert!(
            (fd - gx[idx]).abs() < 1e-7 * (1.0 + fd.abs()),
            "x̄[{idx}]: {} vs {fd}",
            gx[idx]
        );
    }
}

#[test]
fn const_batches_single_vectors_and_f32() {
    let dev = Cpu::default();
    let layer = dev.build_module::<builders::Dense<3, 4, Tanh>, f64>();
    let lin = linear_like(&layer);
    let x: Tensor<Rank2<5, 3>, f64, Cpu> = dev.sample_normal();
    assert_close(
        &layer.forward(x.clone()).as_vec(),
        &lin.forward(x.clone()).tanh().as_vec(),
        1e-14,
        "Const batch",
    );
    let v: Tensor<Rank1<3>, f64, Cpu> = dev.sample_normal();
    let g = layer.forward(v.leaky_trace()).sum::<Rank0, _>().backward();
    let g_ref = lin
        .forward(v.leaky_trace())
        .tanh()
        .sum::<Rank0, _>()
        .backward();
    assert_close(
        &g.get(&v).as_vec(),
        &g_ref.get(&v).as_vec(),
        1e-14,
        "rank 1 x̄",
    );
    assert_close(
        &g.get(&layer.weight).as_vec(),
        &g_ref.get(&lin.weight).as_vec(),
        1e-14,
        "rank 1 W̄",
    );

    let l32 = dev.build_module::<builders::Dense<3, 4, Sigmoid>, f32>();
    let x32: Tensor<Rank2<5, 3>, f32, Cpu> = dev.sample_normal();
    let mut lin32 = dev.build_module::<dfdx::nn::builders::Linear<3, 4>, f32>();
    lin32.weight.copy_from(&l32.weight.as_vec());
    lin32.bias.copy_from(&l32.bias.as_vec());
    let g = l32.forward(x32.leaky_trace()).sum::<Rank0, _>().backward();
    let g_ref = lin32
        .forward(x32.leaky_trace())
        .sigmoid()
        .sum::<Rank0, _>()
        .backward();
    for (a, b) in g
        .get(&l32.weight)
        .as_vec()
        .iter()
        .zip(g_ref.get(&lin32.weight).as_vec())
    {
        assert!((a - b).abs() <= 1e-6 * (1.0 + b.abs()), "f32 W̄: {a} vs {b}");
    }
}

#[test]
fn views_inputs_used_twice_and_empty_batches() {
    let dev = Cpu::default();
    let layer = dev.build_module::<builders::Dense<3, 2, Identity>, f64>();
    let lin = linear_like(&layer);
    // A broadcast (non-contiguous) input.
    let row: Tensor<Rank1<3>, f64, Cpu> = dev.tensor([0.5, -1.0, 2.0]);
    let g = layer
        .forward(row.leaky_trace().broadcast::<Rank2<4, 3>, _>())
        .sum::<Rank0, _>()
        .backward();
    let g_ref = lin
        .forward(row.leaky_trace().broadcast::<Rank2<4, 3>, _>())
        .sum::<Rank0, _>()
        .backward();
    assert_close(
        &g.get(&row).as_vec(),
        &g_ref.get(&row).as_vec(),
        1e-14,
        "broadcast x̄",
    );
    // The input used twice on one tape: both cotangents add up.
    let x: Tensor<Rank2<4, 3>, f64, Cpu> = dev.sample_normal();
    let xt = x.leaky_trace();
    let y = layer.forward(xt.with_empty_tape()) + layer.forward(xt);
    let g = y.sum::<Rank0, _>().backward();
    let xt = x.leaky_trace();
    let y = lin.forward(xt.with_empty_tape()) + lin.forward(xt);
    let g_ref = y.sum::<Rank0, _>().backward();
    assert_close(
        &g.get(&x).as_vec(),
        &g_ref.get(&x).as_vec(),
        1e-14,
        "x used twice",
    );
    assert_close(
        &g.get(&layer.weight).as_vec(),
        &g_ref.get(&lin.weight).as_vec(),
        1e-14,
        "W used twice",
    );
    // An empty batch gives an empty output (dfdx 0.13's own `sum` panics on empty tensors, so
    // the backward pass is not exercised here).
    let e: Tensor<(usize, Const<3>), f64, Cpu> = dev.zeros_like(&(0, Const));
    let y = layer.forward(e.leaky_trace());
    assert_eq!(y.shape().0, 0);
}

#[test]
fn collections_optimisers_and_safetensors_see_a_linear() {
    let dev = Cpu::default();
    type Net = (builders::Dense<2, 8, Tanh>, builders::Dense<8, 2, Identity>);
    type LinNet = (
        dfdx::nn::builders::Linear<2, 8>,
        dfdx::nn::builders::Linear<8, 2>,
    );
    let mut net = dev.build_module::<Net, f64>();
    let lin = dev.build_module::<LinNet, f64>();
    assert_eq!(net.num_trainable_params(), lin.num_trainable_params());

    // Weights saved from dfdx `Linear` layers load into `Dense` layers under the same keys.
    let path = std::env::temp_dir().join(format!(
        "neural-ode-dense-{}.safetensors",
        std::process::id()
    ));
    lin.save_safetensors(&path).expect("save");
    net.load_safetensors(&path).expect("load");
    std::fs::remove_file(&path).ok();
    assert_eq!(net.0.weight.as_vec(), lin.0.weight.as_vec());
    assert_eq!(net.1.bias.as_vec(), lin.1.bias.as_vec());

    // One Adam step moves every parameter.
    let before = (net.0.weight.as_vec(), net.1.bias.as_vec());
    let mut opt = Adam::new(&net, AdamConfig::default());
    let grads = net.alloc_grads();
    let x: Tensor<Rank2<16, 2>, f64, Cpu> = dev.sample_normal();
    let grads = net
        .forward(x.trace(grads))
        .square()
        .sum::<Rank0, _>()
        .backward();
    opt.update(&mut net, &grads).expect("update");
    assert!(net
        .0
        .weight
        .as_vec()
        .iter()
        .zip(&before.0)
        .all(|(a, b)| a != b));
    assert!(net
        .1
        .bias
        .as_vec()
        .iter()
        .zip(&before.1)
        .all(|(a, b)| a != b));

    // Conversion to another dtype keeps the values.
    let net32 = net.to_dtype::<f32>();
    assert_eq!(net32.0.weight.as_vec()[0], net.0.weight.as_vec()[0] as f32);
}
