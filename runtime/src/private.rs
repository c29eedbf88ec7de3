//! Names used only by code that `#[neural_ode]` generates: not part of the public API.

pub use crate::backend::Backend;
pub use crate::field::VectorField;
pub use crate::real::{lit, Real};
pub use crate::rk::{
    combine, eval, stage, AdjointInput, AdjointStep, RungeKutta, Step, StoredStages, Workspace,
};
pub use crate::shape::StateShape;
pub use dfdx::nn::tensor_collection::{ModuleVisitor, TensorCollection};
pub use dfdx::shapes::Dtype;
pub use dfdx::tensor::Tensor;
pub use dfdx::tensor_ops::Device;
pub use num_traits::{Float, Zero};
pub use rand_distr::uniform::SampleUniform;

/// Implemented by every dfdx module: what `#[neural_ode]` asks of each field that is not
/// `#[neural_ode(skip)]`. Generated code asserts it per field with [`assert_module`], spanned at
/// the field's type, so a field of another type is reported there, with the fix.
#[diagnostic::on_unimplemented(
    message = "field type `{Self}` is not a dfdx module",
    label = "not a dfdx module (no `TensorCollection<{E}, {D}>` impl)",
    note = "mark fields that hold no parameters with `#[neural_ode(skip)]`"
)]
pub trait FieldModule<E: Dtype, D: Device<E>> {}

// `do_not_recommend`: report the unmet `FieldModule` (and its message), not the
// `TensorCollection` bound of this impl.
#[diagnostic::do_not_recommend]
impl<T: TensorCollection<E, D>, E: Dtype, D: Device<E>> FieldModule<E, D> for T {}

/// Compiles only if `T` is a dfdx module at dtype `E` on device `D`.
pub fn assert_module<T: FieldModule<E, D>, E: Dtype, D: Device<E>>() {}

/// The `To` type of generated `TensorCollection` impls: a model cannot be rebuilt at another
/// dtype or device through the generated impl.
#[derive(Clone, Copy, Debug, Default)]
pub struct NotConvertible;

/// Stand-in solver emitted next to a `compile_error!`, so one mistake in the attribute does
/// not cause a cascade of follow-on errors. It is never run: the crate does not compile.
#[derive(Clone, Copy, Debug, Default)]
pub struct Invalid;

impl RungeKutta for Invalid {
    const NAME: &'static str = "invalid";
    const TITLE: &'static str = "invalid tableau";
    const REFERENCE: &'static str = "";
    const STAGES: usize = 1;
    const ORDER: u32 = 1;
    const EMBEDDED_ORDER: Option<u32> = None;
    const FSAL: bool = false;
    const C: &'static [f64] = &[0.0];
    const A: &'static [&'static [f64]] = &[&[]];
    const B: &'static [f64] = &[1.0];
    const B_ERR: Option<&'static [f64]> = None;
    const INTERPOLANT_STAGES: usize = 1;
    const INTERPOLANT: &'static [&'static [f64]] = &[&[1.0]];
    const INTERPOLANT_ORDER: u32 = 1;
    const HERMITE: bool = false;

    fn interpolant_weights<E: Real>(theta: E, w: &mut [E]) {
        w[0] = theta;
    }

    fn interpolate<S, E, D>(
        _h: E,
        x: &Tensor<S, E, D>,
        _ks: &[Tensor<S, E, D>],
        _theta: E,
    ) -> Tensor<S, E, D>
    where
        S: StateShape,
        E: Real,
        D: Backend<E>,
    {
        x.clone()
    }

    fn step<S, E, D, F>(
        f: &F,
        t: E,
        _h: E,
        x: &Tensor<S, E, D>,
        _k1: Option<Tensor<S, E, D>>,
        _ws: &mut Workspace<S, E, D>,
    ) -> Step<S, E, D>
    where
        S: StateShape,
        E: Real,
        D: Backend<E>,
        F: VectorField<S, E, D> + ?Sized,
    {
        let k1 = f.eval(t, x.clone());
        Step {
            y: x.clone(),
            err: None,
            k1,
            k_last: None,
            evals: 1,
        }
    }

    fn adjoint_step<S, E, D, F, V, Er>(
        _f: &F,
        input: AdjointInput<'_, S, E, D>,
        _vjp: &mut V,
        _ws: &mut Workspace<S, E, D>,
    ) -> Result<AdjointStep<S, E, D>, Er>
    where
        S: StateShape,
        E: Real,
        D: Backend<E>,
        F: VectorField<S, E, D> + ?Sized,
        V: FnMut(E, Tensor<S, E, D>, Tensor<S, E, D>) -> Result<Tensor<S, E, D>, Er>,
    {
        Ok(AdjointStep {
            x_bar: input.y_bar.clone(),
            evals: 0,
        })
    }
}
