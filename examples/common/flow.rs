//! The continuous normalising flow of `examples/cnf.rs` (FFJORD-style, exact divergence in 2-D)
//! and its data: shared by `cnf` and `mpi_cnf`.
//!
//! The state is `[z₁, z₂, ℓ]` with `dz/dt = g(t, z)` (an MLP) and `dℓ/dt = −∇·g`, so that
//! `log p(x) = log N(z(1); 0, I) − ℓ(1)` for `z(0) = x`, `ℓ(0) = 0`. dfdx has no second-order
//! autodiff, so the divergence is computed inside the vector field from forward tangents (one
//! per input dimension) built with ordinary dfdx operations; the symplectic adjoint then needs
//! only first-order vector–Jacobian products of that field.
#![allow(dead_code)]

use neural_ode::dfdx::prelude::*;
use neural_ode::nn::{builders, Dense, Identity, Tanh};
use neural_ode::{neural_ode, solve, SolveOptions, VectorField};
use plotters::prelude::*;

pub type State = (usize, Const<3>);
pub const H: usize = 32;

#[neural_ode(solver = "dopri5", grad = "symplectic")]
#[derive(Clone, Debug)]
pub struct Flow {
    // Affine layers (the fused `Dense` with no activation): time enters between the product and
    // the tanh, so the activations are applied separately.
    pub l1: Dense<2, H, Identity, f64, Cpu>,
    pub l2: Dense<H, H, Identity, f64, Cpu>,
    pub l3: Dense<H, 2, Identity, f64, Cpu>,
    /// Time enters each hidden layer as `t · w`.
    pub t1: Tensor<Rank1<H>, f64, Cpu>,
    pub t2: Tensor<Rank1<H>, f64, Cpu>,
    /// Constant selection matrices: `[z, ℓ] ↦ z`, `g ↦ [g, 0]`, `−div ↦ [0, 0, −div]`,
    /// and the one-hot tangents `e₁`, `e₂`.
    #[neural_ode(skip)]
    pick_z: Tensor<Rank2<3, 2>, f64, Cpu>,
    #[neural_ode(skip)]
    put_g: Tensor<Rank2<2, 3>, f64, Cpu>,
    #[neural_ode(skip)]
    put_l: Tensor<Rank2<1, 3>, f64, Cpu>,
    #[neural_ode(skip)]
    e: [Tensor<Rank1<2>, f64, Cpu>; 2],
}

impl VectorField<State, f64, Cpu> for Flow {
    fn eval<T: Tape<f64, Cpu>>(
        &self,
        t: f64,
        x: Tensor<State, f64, Cpu, T>,
    ) -> Tensor<State, f64, Cpu, T> {
        let b = x.shape().0;
        let hidden = (b, Const::<H>);
        let z = x.matmul(self.pick_z.clone());
        // g(t, z) = W3 tanh(W2 tanh(W1 z + b1 + t w1) + b2 + t w2) + b3
        let h1 =
            Tanh.forward(self.l1.forward(z) + (self.t1.retaped::<T>() * t).broadcast_like(&hidden));
        let s1 = h1.with_empty_tape().square().negate() + 1.0; // tanh' = 1 − tanh²
        let h2 = Tanh
            .forward(self.l2.forward(h1) + (self.t2.retaped::<T>() * t).broadcast_like(&hidden));
        let s2 = h2.with_empty_tape().square().negate() + 1.0;
        let g = self.l3.forward(h2);

        // Exact divergence: Σ_j (J e_j)_j with J e_j = W3 (s2 ⊙ W2 (s1 ⊙ W1 e_j)). Each use of
        // s1, s2 but the last takes an empty-tape copy, so every operation is recorded once.
        let mut div: Option<Tensor<(usize,), f64, Cpu, T>> = None;
        let (mut s1, mut s2) = (Some(s1), Some(s2));
        for j in 0..2 {
            let take = |s: &mut Option<Tensor<(usize, Const<H>), f64, Cpu, T>>| {
                if j == 0 {
                    s.as_ref().map(|s| s.with_empty_tape())
                } else {
                    s.take()
                }
            };
            let (s1j, s2j) = (take(&mut s1).expect("s1"), take(&mut s2).expect("s2"));
            let ej = self.e[j].clone().broadcast_like(&(b, Const::<2>));
            let v1 = ej
                .retaped::<T>()
                .matmul(self.l1.weight.retaped::<T>().permute())
                * s1j;
            let v2 = v1.matmul(self.l2.weight.retaped::<T>().permute()) * s2j;
            let v3 = v2.matmul(self.l3.weight.retaped::<T>().permute());
            let dj = (v3 * self.e[j].clone().broadcast_like(&(b, Const::<2>)))
                .sum::<(usize,), Axis<1>>();
            div = Some(match div {
                None => dj,
                Some(d) => d + dj,
            });
        }
        let div = div.expect("two dimensions");
        let neg_div = div.negate().broadcast_like(&(b, Const::<1>));
        g.matmul(self.put_g.clone()) + neg_div.matmul(self.put_l.clone())
    }
}

impl Flow {
    /// A flow with random layers from `dev`.
    pub fn new(dev: &Cpu) -> Self {
        Flow {
            l1: dev.build_module::<builders::Dense<2, H, Identity>, f64>(),
            l2: dev.build_module::<builders::Dense<H, H, Identity>, f64>(),
            l3: dev.build_module::<builders::Dense<H, 2, Identity>, f64>(),
            t1: dev.sample_normal() * 0.1,
            t2: dev.sample_normal() * 0.1,
            pick_z: dev.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]),
            put_g: dev.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]),
            put_l: dev.tensor([[0.0, 0.0, 1.0]]),
            e: [dev.tensor([1.0, 0.0]), dev.tensor([0.0, 1.0])],
        }
    }
}

/// Samples of the eight-Gaussians density: centres on a circle of radius 2, σ = 0.2.
pub fn eight_gaussians(dev: &Cpu, n: usize, rng: &mut u64) -> Tensor<State, f64, Cpu> {
    let noise: Tensor<(usize, Const<2>), f64, Cpu> = dev.sample_normal_like(&(n, Const));
    let noise = noise.as_vec();
    let mut v = Vec::with_capacity(3 * n);
    for i in 0..n {
        *rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let k = (*rng >> 33) % 8;
        let angle = k as f64 * std::f64::consts::FRAC_PI_4;
        v.extend_from_slice(&[
            2.0 * angle.cos() + 0.2 * noise[2 * i],
            2.0 * angle.sin() + 0.2 * noise[2 * i + 1],
            0.0,
        ]);
    }
    dev.tensor_from_vec(v, (n, Const))
}

/// `log p(x)` for each row of `x` (a `[x₁, x₂, 0]` batch) and the solve, on `x`'s tape.
pub type Density<T> = (
    Tensor<(usize,), f64, Cpu, T>,
    neural_ode::Solution<State, f64, Cpu, T>,
);

pub fn log_density<T: Tape<f64, Cpu> + 'static>(
    flow: &Flow,
    x: Tensor<State, f64, Cpu, T>,
    opts: &SolveOptions,
) -> Density<T> {
    let dev = x.device().clone();
    let b = x.shape().0;
    let mut sol = solve(flow, x, &[0.0, 1.0], opts).expect("solve");
    let ys = std::mem::replace(&mut sol.ys, dev.zeros_like(&(0, b, Const)).retaped::<T>());
    let end = ys.select(dev.tensor(1usize));
    let z = end.with_empty_tape().matmul(flow.pick_z.clone());
    let ell = end
        .matmul(dev.tensor([[0.0], [0.0], [1.0]]))
        .reshape_like(&(b,));
    // log N(z; 0, I) in 2-D = −|z|²/2 − log 2π
    let log_pz = z.square().sum::<(usize,), Axis<1>>() * -0.5 - (2.0 * std::f64::consts::PI).ln();
    (log_pz - ell, sol)
}

/// Writes the learned density on a grid to `path`.
pub fn plot(
    flow: &Flow,
    opts: &SolveOptions,
    path: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    const N: usize = 100;
    const R: f64 = 3.2;
    let dev = Cpu::default();
    let mut grid = Vec::with_capacity(3 * N * N);
    for i in 0..N {
        for j in 0..N {
            let x = -R + 2.0 * R * (j as f64 + 0.5) / N as f64;
            let y = R - 2.0 * R * (i as f64 + 0.5) / N as f64;
            grid.extend_from_slice(&[x, y, 0.0]);
        }
    }
    let x: Tensor<State, f64, Cpu> = dev.tensor_from_vec(grid, (N * N, Const));
    let (logp, _) = log_density(flow, x, opts);
    let p: Vec<f64> = logp.as_vec().iter().map(|l| l.exp()).collect();
    let max = p.iter().cloned().fold(0.0, f64::max).max(1e-12);

    let text = crate::common::register_font();
    let root = BitMapBackend::new(path, (640, 680)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, body) = root.split_vertically(40);
    if text {
        top.titled("learned density, eight Gaussians", ("sans-serif", 22))?;
    }
    let cells = body.split_evenly((N, N));
    for (cell, v) in cells.iter().zip(&p) {
        let c = (v / max).clamp(0.0, 1.0);
        // A simple perceptual-ish ramp from dark blue to yellow.
        let color = RGBColor(
            (255.0 * c.powf(0.8)) as u8,
            (230.0 * c.sqrt()) as u8,
            (120.0 * (1.0 - c) + 40.0) as u8,
        );
        cell.fill(&color)?;
    }
    root.present()?;
    Ok(())
}
