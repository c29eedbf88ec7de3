//! `Solution::steps`: the accepted step boundaries, as the solve took them, and enough to
//! reproduce the grid.
#![deny(warnings)]

mod common;

use common::*;
use neural_ode::dfdx::prelude::*;
use neural_ode::{solve, SolveOptions};

#[test]
fn fixed_grids_are_reported_as_solved() {
    let dev = Cpu::seed_from_u64(1);
    let model = Dopri5::<f64, Cpu>::create(&dev);
    let x0: Tensor<State, f64, Cpu> = dev.sample_normal_like(&(4, Const));
    let sol = solve(
        &model,
        x0.clone(),
        &[0.0, 0.3, 1.0],
        &SolveOptions::fixed_size(0.25).land_on_outputs(),
    )
    .unwrap();
    let t = sol.steps.to_vec();
    // 0 → 0.3 in 2 steps, 0.3 → 1 in 3.
    assert_eq!(sol.steps.len(), 5);
    assert_eq!(sol.stats.accepted, 5);
    assert_eq!(t.len(), 6);
    assert_eq!((t[0], t[2], t[5]), (0.0, 0.3, 1.0));
    assert!((t[1] - 0.15).abs() < 1e-15 && (t[3] - (0.3 + 0.7 / 3.0)).abs() < 1e-15);
    // By default the grid covers the span, independent of the outputs: 4 steps of 0.25.
    let sol = solve(
        &model,
        x0,
        &[0.0, 0.3, 1.0],
        &SolveOptions::fixed_size(0.25),
    )
    .unwrap();
    assert_eq!(sol.steps.to_vec(), [0.0, 0.25, 0.5, 0.75, 1.0]);
}

#[test]
fn adaptive_grids_can_be_inspected_and_reproduced() {
    let dev = Cpu::seed_from_u64(2);
    let model = Tsit5::<f64, Cpu>::create(&dev);
    let x0: Tensor<State, f64, Cpu> = dev.sample_normal_like(&(4, Const));
    let times = [0.0, 0.5, 2.0];
    let sol = solve(
        &model,
        x0.clone(),
        &times,
        &SolveOptions::adaptive(1e-8, 1e-10).land_on_outputs(),
    )
    .unwrap();
    let grid = sol.steps.to_vec();
    assert_eq!(sol.steps.len(), sol.stats.accepted);
    assert_eq!(grid.len(), sol.stats.accepted + 1);
    assert!(grid.windows(2).all(|w| w[0] < w[1]), "increasing: {grid:?}");
    assert_eq!((grid[0], *grid.last().unwrap()), (0.0, 2.0));
    // Outputs are step boundaries with `land_on_outputs`.
    assert!(grid.contains(&0.5));
    // The same grid as a fixed-step solve with one step per interval: the same final state.
    let h_max = grid.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    let replay = solve(
        &model,
        x0,
        &grid,
        &SolveOptions::fixed_size(h_max).land_on_outputs(),
    )
    .unwrap();
    assert_eq!(replay.stats.accepted, sol.stats.accepted);
    let (a, b) = (sol.ys.as_vec(), replay.ys.as_vec());
    let last = |v: &[f64]| v[v.len() - 8..].to_vec();
    let err = last(&a)
        .iter()
        .zip(last(&b))
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
    assert!(err <= 1e-13, "{err:e}");
}
