//! The `#[neural_ode]` attribute of [neural-ode](https://docs.rs/neural-ode).
//!
//! This file only holds the entry point; the work is a pipeline of plain functions that unit
//! tests can call, in two halves that `expand` joins:
//!
//! - the front end, `internals`: `attr` (parse the attribute) → `load` (read the tableau file)
//!   → `tableau` (exact-rational IR) → `validate` (shape, consistency, rooted-tree order
//!   conditions, the `[dense]` continuous extension) → `analysis` (what each stage takes part
//!   in, computed once), and `fields` (the struct's fields). It imports nothing from the back
//!   end;
//! - the back end, `codegen`: the forward step, the one backward step (the symplectic partner,
//!   with optional stored stages and optional output cotangents), the interpolant, constants,
//!   docs and the trait impls, printing through the leaf module `codegen::tokens`.

extern crate proc_macro;

mod codegen;
mod expand;
#[cfg(test)]
mod fuzz;
mod internals;

/// Generates a Runge–Kutta solver from a Butcher tableau file for the annotated model struct.
///
/// ```ignore
/// #[neural_ode(solver = "dopri5", grad = "symplectic")]
/// #[derive(Clone, Debug)]
/// struct Model { mlp: (Linear<2, 64, f64, Cpu>, Tanh, Linear<64, 2, f64, Cpu>) }
/// ```
///
/// Keys: `solver = "name"` (a tableau shipped in this crate's `tableaux/`, default `dopri5`) or
/// `tableau = "path.toml"` (relative to the crate's `Cargo.toml`; the environment variable
/// `NEURAL_ODE_TABLEAU_DIR` overrides that directory), and `grad = "symplectic" | "aca"
/// | "backprop" | "adjoint"` (default `symplectic`). Fields marked `#[neural_ode(skip)]` are left
/// out of the generated `TensorCollection` impl.
#[proc_macro_attribute]
pub fn neural_ode(
    args: proc_macro::TokenStream,
    input: proc_macro::TokenStream,
) -> proc_macro::TokenStream {
    expand::expand(args.into(), input.into()).into()
}
