//! The back end: code from a validated, analysed method. The forward step ([`step`]), the one
//! backward step ([`adjoint`]: the symplectic partner, with optional stored stages and
//! optional output cotangents), the interpolant ([`interp`]), the constants ([`constants`]),
//! rustdoc ([`docs`]) and the impls that connect the user's struct to the runtime and to dfdx
//! ([`impls`]), all reading the same IR and printing through the leaf [`tokens`]. Exact zeros
//! produce no code.

mod adjoint;
mod constants;
mod docs;
pub mod impls;
mod interp;
mod step;
mod tokens;

use proc_macro2::{Ident, TokenStream};
use quote::quote;

use crate::internals::analysis::Analysis;
use crate::internals::validate::Method;

pub use docs::docs;
pub use tokens::block;

/// The whole `impl RungeKutta for #solver` (for the block of [`tokens::block`]).
pub fn runge_kutta_impl(m: &Method, an: &Analysis, solver: &Ident) -> TokenStream {
    let p = tokens::private();
    let constants = constants::constants(m, an);
    let step = step::step(m, an);
    let adjoint = adjoint::adjoint(an);
    let interp = interp::methods(&an.interpolant);
    let step_bounds = tokens::bounds(false);
    let adjoint_bounds = tokens::bounds(true);
    quote! {
        #[automatically_derived]
        #[allow(clippy::too_many_lines, clippy::many_single_char_names)]
        impl #p::RungeKutta for #solver {
            #constants

            fn step<S, E, D, F>(
                f: &F,
                t: E,
                h: E,
                x: &#p::Tensor<S, E, D>,
                k1: Option<#p::Tensor<S, E, D>>,
                ws: &mut #p::Workspace<S, E, D>,
            ) -> #p::Step<S, E, D>
            #step_bounds
            {
                #step
            }

            fn adjoint_step<S, E, D, F, V, Er>(
                f: &F,
                input: #p::AdjointInput<'_, S, E, D>,
                vjp: &mut V,
                ws: &mut #p::Workspace<S, E, D>,
            ) -> Result<#p::AdjointStep<S, E, D>, Er>
            #adjoint_bounds
            {
                let #p::AdjointInput { t, h, x, y_bar, stored, outputs } = input;
                #adjoint
            }

            #interp
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::internals::analysis::analyse;
    use crate::internals::shipped::text;
    use crate::internals::tableau::parse;
    use crate::internals::validate::validate;

    fn method(name: &str) -> Method {
        validate(parse(text(name).unwrap()).unwrap()).unwrap()
    }

    fn adjoint(name: &str) -> String {
        adjoint::adjoint(&analyse(&method(name))).to_string()
    }

    /// The code between `match stored {` and the rebuild arm: the stored arm.
    fn stored_arm(code: &str) -> &str {
        let start = code.find("match stored {").unwrap();
        let end = code[start..].find("_ =>").unwrap();
        &code[start..start + end]
    }

    #[test]
    fn zero_coefficients_produce_no_code() {
        let code = adjoint("dopri5");
        // The FSAL stage's derivative is never evaluated, and its state is rebuilt (from k6,
        // itself needed only then) and differentiated only with outputs.
        assert!(!code.contains("let k7 ="), "{code}");
        assert!(code.contains("let k6 = outputs . map (| _ |"), "{code}");
        assert!(
            code.contains("let x7 = k6 . as_ref () . map (| k6 |"),
            "{code}"
        );
        assert!(code.contains("let x7_bar = x7 . map (| x7 |"), "{code}");
        // b₂ = 0, b₂(θ) = 0 and a₇₂ = 0: k2's cotangent has no ȳ, output or x7 term, so it
        // is the plain combination of the later stages' (present in every step).
        assert!(
            code.contains(
                "let k2_bar = ws . combine (7 , x , & [(h * lit :: < E > (0.225) , & x3_bar) ,"
            ),
            "{code}"
        );
        // k6's: b₆ ȳ always, the outputs' and a₇₆ x̄₇ only with outputs.
        assert!(code.contains("let k6_bar = ws . combine (7 , x , & [(h * lit :: < E > (0.13095238095238096) , Some (y_bar)) , (h , outputs . map (| o | & o [5])) , (h * lit :: < E > (0.13095238095238096) , x7_bar . as_ref ())])"), "{code}");
        let code = step::step(&method("rk4"), &analyse(&method("rk4"))).to_string();
        // rk4's a31 = 0, so x3 is built from k2 alone.
        assert!(
            code.contains("let x3 = ws . stage_kept (0 , x , & [(h * lit :: < E > (0.5) , & k2)])"),
            "{code}"
        );
    }

    #[test]
    fn the_stored_stage_partner_rebuilds_nothing() {
        for name in ["dopri5", "rk4", "dopri8", "euler"] {
            let code = adjoint(name);
            let arm = stored_arm(&code);
            assert!(!arm.contains("__p :: eval ("), "{name}: {arm}");
            // Every shipped tableau's store covers the sweep with outputs: no guard.
            assert!(!arm.contains("is_none"), "{name}: {arm}");
        }
        let code = adjoint("dopri5");
        let arm = stored_arm(&code);
        assert!(
            arm.contains("stored . stages [4]") && !arm.contains("stored . stages [5]"),
            "{arm}"
        );
        // The FSAL stage's state is the step's result, read only with outputs.
        assert!(
            arm.contains("outputs . map (| _ | Clone :: clone (stored . y))"),
            "{arm}"
        );
    }

    #[test]
    fn zero_polynomials_produce_no_code() {
        // dopri5's b₂(θ) = 0.
        let an = analyse(&method("dopri5"));
        let code = interp::methods(&an.interpolant).to_string();
        assert!(code.contains("w [1] = < E as"), "{code}");
        assert!(!code.contains("(h * w [1] , k2)"), "{code}");
        let code = adjoint("dopri5");
        assert!(!code.contains("& o [1]"), "{code}");
        assert!(code.contains("& o [6]"), "{code}");
        // dopri8's extra stage f(t + h, y) is the 14th.
        let an = analyse(&method("dopri8"));
        let code = interp::methods(&an.interpolant).to_string();
        assert!(code.contains("(h * w [13] , k14)"), "{code}");
    }

    /// Order 1 with a stage the step does not need (b₂ = 0, not FSAL) but whose `[dense]` row
    /// reads it: the stage store has no state for it.
    const DEAD_STAGE_READ_BY_THE_INTERPOLANT: &str = r#"
        name = "dead_stage"
        title = "t"
        reference = "r"
        order = 1
        c = ["0", "1/2"]
        a = [[], ["1/2"]]
        b = ["1", "0"]
        [dense]
        order = 1
        reference = "r"
        b = [["0", "1"], ["1", "-1"]]
    "#;

    #[test]
    fn a_store_that_does_not_cover_the_outputs_sweep_rebuilds_it() {
        let m = validate(parse(DEAD_STAGE_READ_BY_THE_INTERPOLANT).unwrap()).unwrap();
        let an = analyse(&m);
        assert!(!an.stored_covers_outputs);
        let code = adjoint::adjoint(&an).to_string();
        let arm = stored_arm(&code);
        // The stored arm serves steps without outputs only: stage 2 is `None` there.
        assert!(arm.contains("if outputs . is_none ()"), "{arm}");
        assert!(arm.contains("Clone :: clone (x) , None ,)"), "{arm}");
        // Rebuilt, with k1, only for a step with outputs.
        assert!(code.contains("let k1 = outputs . map (| _ |"), "{code}");
        assert!(
            code.contains("let x2 = k1 . as_ref () . map (| k1 | ws . stage (1"),
            "{code}"
        );
    }
}

#[cfg(test)]
mod snapshots {
    //! The whole expansion for a few methods, formatted, so that a reviewer can read the
    //! generated code against the printed tableau. Review changes with `cargo insta review`.

    use quote::quote;

    fn expand(args: proc_macro2::TokenStream) -> String {
        let item: syn::ItemStruct = syn::parse2(quote! {
            #[derive(Clone, Debug)]
            pub struct Field {
                l1: Linear<2, 16, f64, Cpu>,
                act: Tanh,
                #[neural_ode(skip)]
                steps: usize,
            }
        })
        .unwrap();
        // The tracked path of a user tableau is absolute. Replace it before formatting, so that
        // neither the text nor the line breaks depend on where the checkout lives.
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/");
        let tokens = crate::expand::expand(args, quote!(#item))
            .to_string()
            .replace(root, "<macros>/");
        let file: syn::File = syn::parse_str(&tokens).unwrap();
        prettyplease::unparse(&file)
    }

    #[test]
    fn euler() {
        insta::assert_snapshot!(expand(quote!(solver = "euler")));
    }

    #[test]
    fn rk4() {
        insta::assert_snapshot!(expand(quote!(solver = "rk4", grad = "checkpoint")));
    }

    #[test]
    fn dopri5() {
        insta::assert_snapshot!(expand(quote!(solver = "dopri5", grad = "symplectic")));
    }

    #[test]
    fn user_tableau() {
        insta::assert_snapshot!(expand(quote!(
            tableau = "../tests/data/kutta3.toml",
            grad = "adjoint"
        )));
    }
}
