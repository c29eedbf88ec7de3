//! Time as an input feature.

use dfdx::prelude::*;

/// `[x, t]`: the state with the time appended as one more feature column, `(B, Const<N>)` →
/// `(B, Const<M>)` with `M = N + 1` (checked at compile time), on `x`'s tape, so that a field
/// can feed time to its first layer:
///
/// ```
/// use neural_ode_runtime::dfdx::prelude::*;
/// use neural_ode_runtime::nn::{builders, with_time, Dense, Identity, Tanh};
///
/// let dev = Cpu::default();
/// let l1 = dev.build_module::<builders::Dense<3, 16, Tanh>, f64>(); // sees (x₁, x₂, t)
/// let l2 = dev.build_module::<builders::Dense<16, 2, Identity>, f64>();
/// let x: Tensor<(usize, Const<2>), f64, Cpu> = dev.sample_normal_like(&(5, Const));
/// let y = l2.forward(l1.forward(with_time(x.leaky_trace(), 0.5)));
/// let grads = y.sum::<Rank0, _>().backward();
/// assert_eq!(grads.get(&x).shape().0, 5);
/// ```
///
/// (dfdx 0.13 cannot add `Const<N> + Const<1>` on stable Rust, so the width goes through a
/// run-time dimension and back; both reshapes are free.)
pub fn with_time<B, const N: usize, const M: usize, E, D, T>(
    x: Tensor<(B, Const<N>), E, D, T>,
    t: E,
) -> Tensor<(B, Const<M>), E, D, T>
where
    B: Dim,
    E: Dtype,
    D: Device<E>,
    T: Tape<E, D> + Merge<NoneTape>,
{
    const {
        assert!(
            M == N + 1,
            "with_time: the output width must be the input width + 1"
        )
    };
    let rows = x.shape().0;
    let column = (x.device().ones_like(&(rows, 1usize)) * t).retaped::<NoneTape>();
    append_column(x, column)
}

/// `[x, column]`, `(B, Const<N>)` → `(B, Const<M>)` with `M = N + 1` (checked by the callers).
fn append_column<B, const N: usize, const M: usize, E, D, T>(
    x: Tensor<(B, Const<N>), E, D, T>,
    column: Tensor<(B, usize), E, D>,
) -> Tensor<(B, Const<M>), E, D, T>
where
    B: Dim,
    E: Dtype,
    D: Device<E>,
    T: Tape<E, D> + Merge<NoneTape>,
{
    let joined = (x, column).concat_along(Axis::<1>);
    match joined.try_realize::<(B, Const<M>)>() {
        Ok(y) => y,
        // The width is N + 1 = M by construction.
        Err(_) => unreachable!("a column appended to width N is not of width N + 1"),
    }
}

/// [`with_time`] with each row at its own time: `[x_i, t_i]` for row `i`, for a field's
/// [`VectorField::eval_rows`](crate::VectorField::eval_rows) under per-sample steps.
///
/// # Panics
/// If `t` does not have one time per row.
pub fn with_row_times<B, const N: usize, const M: usize, E, D, T>(
    x: Tensor<(B, Const<N>), E, D, T>,
    t: &[E],
) -> Tensor<(B, Const<M>), E, D, T>
where
    B: Dim,
    E: Dtype,
    D: Device<E>,
    T: Tape<E, D> + Merge<NoneTape>,
{
    const {
        assert!(
            M == N + 1,
            "with_row_times: the output width must be the input width + 1"
        )
    };
    let rows = x.shape().0.size();
    assert_eq!(
        t.len(),
        rows,
        "with_row_times: {} times for {rows} rows",
        t.len()
    );
    let column = x
        .device()
        .tensor_from_vec(t.to_vec(), (x.shape().0, 1usize));
    append_column(x, column)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::{builders, Identity};

    /// `Dense<3, 4>` on `[x, t]` is `Linear<2, 4>` on `x` with the bias moved by `t · W[:, 2]`:
    /// same values and the same cotangent for `x`.
    #[test]
    fn time_column_is_appended_on_the_tape() {
        let dev = Cpu::seed_from_u64(2);
        let layer = dev.build_module::<builders::Dense<3, 4, Identity>, f64>();
        let t = 0.7;
        let w = layer.weight.as_vec();
        let mut lin = dev.build_module::<dfdx::nn::builders::Linear<2, 4>, f64>();
        let w2: Vec<f64> = (0..4).flat_map(|o| [w[o * 3], w[o * 3 + 1]]).collect();
        lin.weight.copy_from(&w2);
        let b: Vec<f64> = layer
            .bias
            .as_vec()
            .iter()
            .enumerate()
            .map(|(o, b)| b + t * w[o * 3 + 2])
            .collect();
        lin.bias.copy_from(&b);
        let x: Tensor<(usize, Const<2>), f64, Cpu> = dev.sample_normal_like(&(6, Const));
        let v: Tensor<(usize, Const<4>), f64, Cpu> = dev.sample_normal_like(&(6, Const));
        let y = layer.forward(with_time(x.leaky_trace(), t));
        let y_ref = lin.forward(x.leaky_trace());
        for (a, b) in y.as_vec().iter().zip(y_ref.as_vec()) {
            assert!((a - b).abs() < 1e-14, "{a} vs {b}");
        }
        let g = (y * v.clone()).sum::<Rank0, _>().backward();
        let g_ref = (y_ref * v).sum::<Rank0, _>().backward();
        for (a, b) in g.get(&x).as_vec().iter().zip(g_ref.get(&x).as_vec()) {
            assert!((a - b).abs() < 1e-14, "{a} vs {b}");
        }
    }

    /// Row `i` of `with_row_times(x, t)` is `with_time(x_i, t_i)`, bit for bit.
    #[test]
    fn each_row_gets_its_own_time() {
        let dev = Cpu::seed_from_u64(3);
        let layer = dev.build_module::<builders::Dense<3, 4, Identity>, f64>();
        let x: Tensor<(usize, Const<2>), f64, Cpu> = dev.sample_normal_like(&(3, Const));
        let ts = [0.25, -1.5, 3.0];
        let y = layer.forward(with_row_times(x.clone(), &ts)).as_vec();
        let xs = x.as_vec();
        for (i, &t) in ts.iter().enumerate() {
            let xi = dev.tensor_from_vec(xs[2 * i..2 * i + 2].to_vec(), (1usize, Const::<2>));
            let yi = layer.forward(with_time(xi, t)).as_vec();
            assert_eq!(yi, y[4 * i..4 * i + 4].to_vec(), "row {i}");
        }
    }
}
