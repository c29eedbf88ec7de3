//! The fused stack against its layers called one by one: the same bits, forward and backward,
//! for every activation, 1 to 4 layers, batches around the block size, f32 and f64, and 1 to 3
//! threads.

use dfdx::prelude::*;

use crate::nn::{builders, Dense, Identity, Layers, Mlp, Sigmoid, Silu, Softplus, Tanh};

/// The bits of `values` (as f64, to compare f32 and f64 alike).
fn bits<E: Dtype + Into<f64>>(values: Vec<E>) -> Vec<u64> {
    values.into_iter().map(|v| v.into().to_bits()).collect()
}

fn pool(n: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .unwrap()
}

/// Output, input cotangent and every parameter's cotangent, for the stack run fused and run
/// layer by layer, on a loss that weights every output differently.
macro_rules! check {
    ($e:ty, $i:literal, $o:literal, $net:ty, $params:expr) => {{
        let dev = Cpu::seed_from_u64(11);
        let net = dev.build_module::<$net, $e>();
        for rows in [1usize, 16, 127, 128, 200, 513] {
            let values: Vec<$e> = (0..rows * $i).map(|k| ((k as $e) * 0.37).sin() * 1.5).collect();
            let x: Tensor<(usize, Const<$i>), $e, Cpu> = dev.tensor_from_vec(values, (rows, Const));
            let weights: Tensor<(usize, Const<$o>), $e, Cpu> =
                dev.tensor_from_vec((0..rows * $o).map(|k| ((k as $e) * 0.11).cos()).collect(), (rows, Const));
            let run = |fused: bool| {
                let y = if fused {
                    net.forward(x.leaky_trace())
                } else {
                    Layers::<$e, Cpu, $i>::sequential(&net.0, x.leaky_trace()).unwrap()
                };
                let plain = if fused {
                    net.forward(x.clone())
                } else {
                    Layers::<$e, Cpu, $i>::sequential(&net.0, x.clone()).unwrap()
                };
                let g = (y * weights.clone()).sum::<Rank0, _>().backward();
                let mut out = bits(plain.as_vec());
                out.extend(bits(g.get(&x).as_vec()));
                for p in $params(&net, &g) {
                    out.extend(bits(p));
                }
                out
            };
            for threads in [1, 2, 3] {
                let (layer_by_layer, fused) = pool(threads).install(|| (run(false), run(true)));
                let differ = layer_by_layer.iter().zip(&fused).filter(|(a, b)| a != b).count();
                assert!(
                    layer_by_layer.len() == fused.len() && differ == 0,
                    "{}, {rows} rows, {threads} threads: {differ} of {} values differ",
                    stringify!($net),
                    fused.len()
                );
            }
        }
    }};
}

/// A layer's weight and bias cotangents.
fn dense<const I: usize, const O: usize, A, E: Dtype>(
    l: &Dense<I, O, A, E, Cpu>,
    g: &Gradients<E, Cpu>,
) -> [Vec<E>; 2] {
    [g.get(&l.weight).as_vec(), g.get(&l.bias).as_vec()]
}

type Three<A, B, C, const W: usize> = Mlp<(
    builders::Dense<2, W, A>,
    builders::Dense<W, W, B>,
    builders::Dense<W, 2, C>,
)>;

#[test]
fn fused_gives_the_bits_of_the_layers_one_by_one() {
    macro_rules! three {
        ($e:ty, $a:ty, $b:ty, $c:ty, $w:literal) => {
            check!($e, 2, 2, Three<$a, $b, $c, $w>, |n: &Mlp<(
                Dense<2, $w, $a, $e, Cpu>,
                Dense<$w, $w, $b, $e, Cpu>,
                Dense<$w, 2, $c, $e, Cpu>,
            )>, g: &Gradients<$e, Cpu>| {
                let (a, b, c) = &n.0;
                [dense(a, g), dense(b, g), dense(c, g)].concat()
            })
        };
    }
    three!(f64, Tanh, Tanh, Identity, 64);
    three!(f32, Tanh, Tanh, Identity, 64);
    three!(f64, Softplus, Silu, Sigmoid, 33);
    three!(f32, Sigmoid, Softplus, Tanh, 33);
    three!(f64, Silu, Identity, Silu, 5);
    // Wide enough for blocks of 128 rows.
    three!(f64, Tanh, Softplus, Identity, 130);
    three!(f32, Tanh, Tanh, Identity, 256);
}

#[test]
fn one_layer_and_four_layers() {
    check!(
        f64,
        3,
        7,
        Mlp<(builders::Dense<3, 7, Tanh>,)>,
        |n: &Mlp<(Dense<3, 7, Tanh, f64, Cpu>,)>, g: &Gradients<f64, Cpu>| {
            dense(&n.0 .0, g).to_vec()
        }
    );
    type Four = Mlp<(
        builders::Dense<4, 40, Softplus>,
        builders::Dense<40, 3, Tanh>,
        builders::Dense<3, 70, Silu>,
        builders::Dense<70, 1, Identity>,
    )>;
    check!(
        f32,
        4,
        1,
        Four,
        |n: &<Four as dfdx::nn::BuildOnDevice<Cpu, f32>>::Built, g: &Gradients<f32, Cpu>| {
            let (a, b, c, d) = &n.0;
            [dense(a, g), dense(b, g), dense(c, g), dense(d, g)].concat()
        }
    );
}

#[test]
fn parameters_are_the_tuples_and_a_single_vector_works() {
    let dev = Cpu::seed_from_u64(3);
    type Net = Mlp<(builders::Dense<2, 8, Tanh>, builders::Dense<8, 3, Identity>)>;
    let net = dev.build_module::<Net, f64>();
    assert_eq!(net.num_trainable_params(), 2 * 8 + 8 + 8 * 3 + 3);
    let grads = net.alloc_grads();
    // Every parameter has a gradient slot.
    assert_eq!(grads.get(&(net.0).1.bias).as_vec(), vec![0.0; 3]);
    let x: Tensor<Rank1<2>, f64, Cpu> = dev.tensor([0.3, -0.7]);
    // One vector in, one vector out: the layers' own result for it, not the stack's batched
    // path compared with itself.
    let y = net.forward(x.clone());
    let (a, b) = &net.0;
    let want = b.forward(a.forward(x));
    assert_eq!(y.shape(), want.shape());
    assert_eq!(y.as_vec(), want.as_vec());
}
