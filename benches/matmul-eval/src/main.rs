//! Candidate matrix products on the shapes of a dense layer (batch 512): the forward product
//! `y = x Wᵀ`, the input cotangent `x̄ = d W` and the weight cotangent `W̄ = dᵀ x`, with W stored
//! O × I as dfdx's `Linear` stores it. Each candidate adds into a row-major output through its
//! strided interface; every result is checked against a plain loop. Median of 11 timings of
//! about 2 ms each, µs per product.

use std::time::Instant;

use neural_ode_runtime::nn::matmul;

const BATCH: usize = 512;

/// Row and column strides of an operand.
#[derive(Clone, Copy)]
struct Layout {
    rs: usize,
    cs: usize,
}

/// One product `c (m × n, row-major) += a (m × k) · b (k × n)` (from `c = 0`).
struct Product {
    name: String,
    m: usize,
    n: usize,
    k: usize,
    a: Layout,
    b: Layout,
}

type Candidate = fn(&Product, &[f64], &[f64], &mut [f64]);

fn gemm15(p: &Product, a: &[f64], b: &[f64], c: &mut [f64]) {
    // SAFETY: the strides describe `a`, `b` and `c` as allocated by `run`.
    unsafe {
        gemm15::gemm(
            p.m,
            p.n,
            p.k,
            c.as_mut_ptr(),
            1,
            p.n as isize,
            true,
            a.as_ptr(),
            p.a.cs as isize,
            p.a.rs as isize,
            b.as_ptr(),
            p.b.cs as isize,
            p.b.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm15::Parallelism::None,
        )
    }
}

fn gemm19(p: &Product, a: &[f64], b: &[f64], c: &mut [f64]) {
    // SAFETY: as above.
    unsafe {
        gemm19::gemm(
            p.m,
            p.n,
            p.k,
            c.as_mut_ptr(),
            1,
            p.n as isize,
            true,
            a.as_ptr(),
            p.a.cs as isize,
            p.a.rs as isize,
            b.as_ptr(),
            p.b.cs as isize,
            p.b.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm19::Parallelism::None,
        )
    }
}

fn faer24(p: &Product, a: &[f64], b: &[f64], c: &mut [f64]) {
    // SAFETY: as above.
    unsafe {
        let a =
            faer::MatRef::from_raw_parts(a.as_ptr(), p.m, p.k, p.a.rs as isize, p.a.cs as isize);
        let b =
            faer::MatRef::from_raw_parts(b.as_ptr(), p.k, p.n, p.b.rs as isize, p.b.cs as isize);
        let c = faer::MatMut::from_raw_parts_mut(c.as_mut_ptr(), p.m, p.n, p.n as isize, 1);
        faer::linalg::matmul::matmul(c, faer::Accum::Add, a, b, 1.0, faer::Par::Seq);
    }
}

fn matrixmultiply03(p: &Product, a: &[f64], b: &[f64], c: &mut [f64]) {
    // SAFETY: as above.
    unsafe {
        matrixmultiply::dgemm(
            p.m,
            p.k,
            p.n,
            1.0,
            a.as_ptr(),
            p.a.rs as isize,
            p.a.cs as isize,
            b.as_ptr(),
            p.b.rs as isize,
            p.b.cs as isize,
            1.0,
            c.as_mut_ptr(),
            p.n as isize,
            1,
        )
    }
}

/// What `neural_ode::nn::matmul` does for this product (the chosen dispatch).
fn neural_ode(p: &Product, a: &[f64], b: &[f64], c: &mut [f64]) {
    let (kind, i, o) = layer(p);
    match kind {
        // `forward` overwrites its output; the others add (`c` starts at zero, so both agree).
        'f' => matmul::forward(BATCH, i, o, a, b, c),
        'x' => matmul::input_grad(BATCH, i, o, a, b, c),
        _ => matmul::weight_grad(BATCH, i, o, a, b, c),
    }
}

/// Which layer product `p` is, and the layer's (I, O).
fn layer(p: &Product) -> (char, usize, usize) {
    let kind = p.name.chars().next().expect("name");
    match kind {
        'f' => (kind, p.k, p.n),
        'x' => (kind, p.n, p.k),
        _ => (kind, p.n, p.m),
    }
}

fn products() -> Vec<Product> {
    let mut out = Vec::new();
    for (i, o) in [(2, 64), (64, 64), (64, 2), (2, 256), (256, 256), (256, 2)] {
        out.push(Product {
            name: format!("forward {BATCH}x{i} -> {o}"),
            m: BATCH,
            n: o,
            k: i,
            a: Layout { rs: i, cs: 1 },
            b: Layout { rs: 1, cs: i },
        });
        out.push(Product {
            name: format!("x-cotangent {BATCH}x{o} -> {i}"),
            m: BATCH,
            n: i,
            k: o,
            a: Layout { rs: o, cs: 1 },
            b: Layout { rs: i, cs: 1 },
        });
        out.push(Product {
            name: format!("W-cotangent {o}x{BATCH} . {BATCH}x{i}"),
            m: o,
            n: i,
            k: BATCH,
            a: Layout { rs: 1, cs: o },
            b: Layout { rs: i, cs: 1 },
        });
    }
    out
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn time(mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    f();
    let once = start.elapsed().as_secs_f64().max(1e-7);
    let inner = ((2e-3 / once) as usize).clamp(3, 100_000);
    for _ in 0..inner {
        f();
    }
    median(
        (0..11)
            .map(|_| {
                let start = Instant::now();
                for _ in 0..inner {
                    f();
                }
                start.elapsed().as_secs_f64() / inner as f64 * 1e6
            })
            .collect(),
    )
}

fn main() {
    let candidates: [(&str, Candidate); 5] = [
        ("gemm 0.15 (dfdx 0.13's)", gemm15),
        ("gemm 0.19 x86-v4", gemm19),
        ("faer 0.24", faer24),
        ("matrixmultiply 0.3", matrixmultiply03),
        ("neural_ode::nn::matmul", neural_ode),
    ];
    print!("| product | MFLOP |");
    for (name, _) in &candidates {
        print!(" {name} |");
    }
    println!("\n|---|---|{}", "---|".repeat(candidates.len()));
    for p in products() {
        let len = |l: Layout, rows: usize, cols: usize| (rows - 1) * l.rs + (cols - 1) * l.cs + 1;
        let a: Vec<f64> = (0..len(p.a, p.m, p.k))
            .map(|i| ((i * 7919) % 1000) as f64 / 1000.0 - 0.5)
            .collect();
        let b: Vec<f64> = (0..len(p.b, p.k, p.n))
            .map(|i| ((i * 104_729) % 997) as f64 / 997.0 - 0.5)
            .collect();
        let c0 = vec![0.0; p.m * p.n];
        let mut reference = c0.clone();
        for r in 0..p.m {
            for j in 0..p.n {
                for q in 0..p.k {
                    reference[r * p.n + j] +=
                        a[r * p.a.rs + q * p.a.cs] * b[q * p.b.rs + j * p.b.cs];
                }
            }
        }
        print!(
            "| {} | {:.2} |",
            p.name,
            2.0 * (p.m * p.n * p.k) as f64 / 1e6
        );
        for (name, f) in &candidates {
            let mut c = c0.clone();
            f(&p, &a, &b, &mut c);
            let err = c
                .iter()
                .zip(&reference)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f64::max);
            assert!(err < 1e-10, "{name} on {}: error {err:e}", p.name);
            let mut c = c0.clone();
            let us = time(|| f(&p, &a, &b, &mut c));
            print!(" {us:.1} |");
        }
        println!();
    }
}
