//! Code generation from a validated method: the forward step, the symplectic-partner backward
//! step, rustdoc, and the impls that connect the user's struct to the runtime and to dfdx.
//! `step` and `adjoint` read the same IR; exact zeros produce no code.

use num_rational::BigRational;
use num_traits::{One, Zero};
use proc_macro2::{Ident, Literal, TokenStream};
use quote::{format_ident, quote};

use crate::internals::rational::{to_f64, Coef};
use crate::internals::validate::Method;

use adjoint::{adjoint, adjoint_bounds, adjoint_stored, kept_stages, live_stages};

mod adjoint;
pub mod impls;
mod interp;

/// A float literal token for an exact value (negative values as `-lit`).
pub(crate) fn float(q: &BigRational) -> TokenStream {
    let v = to_f64(q);
    let lit = Literal::f64_unsuffixed(v.abs());
    if v < 0.0 {
        quote!(-#lit)
    } else {
        quote!(#lit)
    }
}

/// `h * lit::<E>(q)`, or `h` when `q` is one.
pub(crate) fn h_times(q: &BigRational) -> TokenStream {
    if q.is_one() {
        quote!(h)
    } else {
        let v = float(q);
        quote!(h * ::neural_ode::__private::lit::<E>(#v))
    }
}

/// The time of stage `i` (0-based): `t`, `t + h` or `t + h * c_i`.
fn stage_time(c: &Coef) -> TokenStream {
    time_at(&c.value)
}

/// `t`, `t + h` or `t + h * c`.
pub(crate) fn time_at(c: &BigRational) -> TokenStream {
    if c.is_zero() {
        quote!(t)
    } else {
        let hc = h_times(c);
        quote!(t + #hc)
    }
}

pub(crate) fn k(i: usize) -> Ident {
    format_ident!("k{}", i + 1)
}
pub(crate) fn x(i: usize) -> Ident {
    if i == 0 {
        format_ident!("x1")
    } else {
        format_ident!("x{}", i + 1)
    }
}
pub(crate) fn k_bar(i: usize) -> Ident {
    format_ident!("k{}_bar", i + 1)
}
pub(crate) fn x_bar(i: usize) -> Ident {
    format_ident!("x{}_bar", i + 1)
}

/// `(h * w_j, &k_j)` for every nonzero weight `w_j`: exact zeros produce no code.
pub(crate) fn k_terms<'a>(weights: impl IntoIterator<Item = &'a BigRational>) -> Vec<TokenStream> {
    weights
        .into_iter()
        .enumerate()
        .filter(|(_, w)| !w.is_zero())
        .map(|(j, w)| {
            let coef = h_times(w);
            let kj = k(j);
            quote!((#coef, &#kj))
        })
        .collect()
}

/// `ws.stage(slot, x, &[(h * a_i1, &k1), …])` for row `i` (or `x.clone()` when the row is all
/// zeros); `slot: None` builds a fresh buffer instead (the step's result).
fn stage_state(m: &Method, i: usize, slot: Option<usize>) -> TokenStream {
    let row: Vec<BigRational> = m.a[i].iter().map(|a| a.value.clone()).collect();
    row_state(&row, slot)
}

/// [`stage_state`] for a row of `a` given as values.
pub(crate) fn row_state(row: &[BigRational], slot: Option<usize>) -> TokenStream {
    let terms = k_terms(row);
    match (terms.is_empty(), slot) {
        (true, _) => quote!(::core::clone::Clone::clone(x)),
        (false, Some(slot)) => {
            let slot = Literal::usize_unsuffixed(slot);
            quote!(ws.stage(#slot, x, &[#(#terms),*]))
        }
        (false, None) => quote!(::neural_ode::__private::stage(x, &[#(#terms),*])),
    }
}

/// `ws.stage_kept(0, x, &[…])` (or `ws.kept(x.clone())` for an all-zero row): stage `i`'s state,
/// recorded by the workspace when it keeps stages.
fn kept_stage_state(m: &Method, i: usize) -> TokenStream {
    let terms = k_terms(m.a[i].iter().map(|a| &a.value));
    if terms.is_empty() {
        quote!(ws.kept(::core::clone::Clone::clone(x)))
    } else {
        quote!(ws.stage_kept(0, x, &[#(#terms),*]))
    }
}

/// The body of `RungeKutta::step`.
pub fn step(m: &Method) -> TokenStream {
    let s = m.s;
    let live = live_stages(m);
    let mut body = Vec::new();
    body.push(quote! {
        let mut evals = 0usize;
        let k1 = match k1 {
            ::core::option::Option::Some(k1) => k1,
            ::core::option::Option::None => {
                evals += 1;
                ::neural_ode::__private::eval(f, t, ::core::clone::Clone::clone(x))
            }
        };
        let k1 = ws.derivative(k1);
    });
    for (i, &live_i) in live.iter().enumerate().skip(1) {
        let xi = x(i);
        let ki = k(i);
        let ti = stage_time(&m.t.c[i]);
        if m.fsal && i == s - 1 {
            // The last stage state is the step's result: a fresh buffer.
            let state = stage_state(m, i, None);
            body.push(quote! {
                let y = #state;
                evals += 1;
                let #ki = ws.derivative(::neural_ode::__private::eval(f, #ti, ::core::clone::Clone::clone(&y)));
            });
        } else if live_i {
            // A live stage state is what the backward step needs: the workspace keeps it when
            // the solve stores stages (`CheckpointPolicy::AllStages`), else it goes through
            // slot 0 like the others.
            let state = kept_stage_state(m, i);
            body.push(quote! {
                let #xi = #state;
                evals += 1;
                let #ki = ws.derivative(::neural_ode::__private::eval(f, #ti, #xi));
            });
        } else {
            // Every stage state goes through slot 0: each is consumed before the next is built.
            let state = stage_state(m, i, Some(0));
            body.push(quote! {
                let #xi = #state;
                evals += 1;
                let #ki = ws.derivative(::neural_ode::__private::eval(f, #ti, #xi));
            });
        }
    }
    if !m.fsal {
        let terms = k_terms(m.t.b.iter().map(|b| &b.value));
        body.push(quote!(let y = ::neural_ode::__private::stage(x, &[#(#terms),*]);));
    }
    let err = match &m.e {
        Some(e) => {
            let terms = k_terms(e);
            let (first, rest) = terms
                .split_first()
                .map(|(f, r)| (f.clone(), r.to_vec()))
                .unwrap_or_default();
            quote!(::core::option::Option::Some(ws.combine(1, #first, &[#(#rest),*])))
        }
        None => quote!(::core::option::Option::None),
    };
    let k_last = if m.fsal {
        let ks = k(s - 1);
        quote!(::core::option::Option::Some(#ks))
    } else {
        quote!(::core::option::Option::None)
    };
    quote! {
        #(#body)*
        let err = #err;
        ::neural_ode::__private::Step { y, err, k1, k_last: #k_last, evals }
    }
}

/// Rustdoc for the solver type: method, order, stages, FSAL, reference and the tableau itself.
pub fn docs(m: &Method) -> String {
    let t = &m.t;
    let mut d = format!(
        "{} (`{}`): explicit Runge–Kutta method of order {}",
        t.title, t.name, t.order
    );
    match t.embedded_order {
        Some(q) => d += &format!(" with an embedded order-{q} error estimate (adaptive steps)"),
        None => d += " (fixed steps)",
    }
    d += &format!(", {} stage{}", m.s, if m.s == 1 { "" } else { "s" });
    if m.fsal {
        d += ", first same as last";
    }
    d += ".\n\n";
    d += &format!("Reference: {}.\n\n", t.reference.trim_end_matches('.'));
    d += "Generated by `#[neural_ode]` from this Butcher tableau (`c | a` over `b`";
    if t.b_hat.is_some() {
        d += " and `b_hat`";
    }
    d += "):\n\n```text\n";
    for i in 0..m.s {
        let row: Vec<&str> = m.a[i].iter().map(|c| c.text.as_str()).collect();
        d += &format!("{:>12} | {}\n", t.c[i].text, row.join("  "));
    }
    d += &format!("{:>12} + {}\n", "", "-".repeat(8 * m.s.min(8)));
    let b: Vec<&str> = t.b.iter().map(|c| c.text.as_str()).collect();
    d += &format!("{:>12} | {}\n", "b", b.join("  "));
    if let Some(bh) = &t.b_hat {
        let bh: Vec<&str> = bh.iter().map(|c| c.text.as_str()).collect();
        d += &format!("{:>12} | {}\n", "b_hat", bh.join("  "));
    }
    d += "```\n";
    if let Some(dense) = &t.dense {
        d += &format!(
            "\nContinuous extension (dense output) of order {} in `INTERPOLANT`, from the tableau's `[dense]` section: {}.{}\n",
            dense.order,
            dense.reference.trim_end_matches('.'),
            if dense.b.len() > m.s {
                " Its last row is the weight of `f(t + h, y)`: one evaluation per step with outputs inside, which is the next step's first."
            } else {
                ""
            }
        );
    } else {
        d += &format!(
            "\nOutputs between step boundaries use the cubic Hermite interpolant through the step's endpoints and their derivatives (order {}; {}), as the tableau has no `[dense]` section.\n",
            t.order.min(3),
            if m.fsal {
                "free: the last stage is the derivative at the step's end"
            } else {
                "one evaluation per step with outputs inside, which is the next step's first"
            }
        );
    }
    d
}

/// `const NAME … ; const A … ;` for the `RungeKutta` impl.
pub fn constants(m: &Method) -> TokenStream {
    let t = &m.t;
    let (name, title, reference) = (&t.name, &t.title, &t.reference);
    let stages = Literal::usize_unsuffixed(m.s);
    let order = Literal::u32_unsuffixed(t.order);
    let embedded = match t.embedded_order {
        Some(q) => {
            let q = Literal::u32_unsuffixed(q);
            quote!(::core::option::Option::Some(#q))
        }
        None => quote!(::core::option::Option::None),
    };
    let fsal = m.fsal;
    let list = |v: &[Coef]| {
        let items: Vec<TokenStream> = v.iter().map(|c| float(&c.value)).collect();
        quote!(&[#(#items),*])
    };
    let c = list(&t.c);
    let b = list(&t.b);
    let rows: Vec<TokenStream> = m.a.iter().map(|row| list(row)).collect();
    let b_err = match &m.e {
        Some(e) => {
            let items: Vec<TokenStream> = e.iter().map(float).collect();
            quote!(::core::option::Option::Some(&[#(#items),*]))
        }
        None => quote!(::core::option::Option::None),
    };
    let kept = kept_stages(m).into_iter().map(Literal::usize_unsuffixed);
    quote! {
        const NAME: &'static str = #name;
        const TITLE: &'static str = #title;
        const REFERENCE: &'static str = #reference;
        const STAGES: usize = #stages;
        const ORDER: u32 = #order;
        const EMBEDDED_ORDER: ::core::option::Option<u32> = #embedded;
        const FSAL: bool = #fsal;
        const C: &'static [f64] = #c;
        const A: &'static [&'static [f64]] = &[#(#rows),*];
        const B: &'static [f64] = #b;
        const B_ERR: ::core::option::Option<&'static [f64]> = #b_err;
        const KEPT_STAGES: &'static [usize] = &[#(#kept),*];
    }
}

/// The whole `impl RungeKutta for #solver`.
pub fn runge_kutta_impl(m: &Method, solver: &Ident) -> TokenStream {
    let constants = constants(m);
    let step = step(m);
    let adjoint = adjoint(m);
    let adjoint_stored = adjoint_stored(m);
    let interpolant = interp::interpolant(m);
    let dense_constants = interp::constants(&interpolant);
    let dense_methods = interp::methods(m, &interpolant);
    let p = quote!(::neural_ode::__private);
    let adjoint_bounds = adjoint_bounds();
    quote! {
        #[automatically_derived]
        impl #p::RungeKutta for #solver {
            #constants
            #dense_constants

            #[allow(clippy::too_many_lines, clippy::many_single_char_names)]
            fn step<S, E, D, F>(
                f: &F,
                t: E,
                h: E,
                x: &#p::Tensor<S, E, D>,
                k1: ::core::option::Option<#p::Tensor<S, E, D>>,
                ws: &mut #p::Workspace<S, E, D>,
            ) -> #p::Step<S, E, D>
            where
                S: #p::StateShape,
                E: #p::Real,
                D: #p::Backend<E>,
                F: #p::VectorField<S, E, D> + ?::core::marker::Sized,
            {
                #step
            }

            #[allow(clippy::too_many_lines, clippy::many_single_char_names)]
            fn adjoint_step<S, E, D, F, V, Er>(
                f: &F,
                t: E,
                h: E,
                x: &#p::Tensor<S, E, D>,
                y_bar: &#p::Tensor<S, E, D>,
                vjp: &mut V,
                ws: &mut #p::Workspace<S, E, D>,
            ) -> ::core::result::Result<#p::AdjointStep<S, E, D>, Er>
            #adjoint_bounds
            {
                #adjoint
            }

            #[allow(clippy::too_many_lines, clippy::many_single_char_names, unused_variables)]
            fn adjoint_step_stored<S, E, D, F, V, Er>(
                f: &F,
                t: E,
                h: E,
                x: &#p::Tensor<S, E, D>,
                stages: &[#p::Tensor<S, E, D>],
                y_bar: &#p::Tensor<S, E, D>,
                vjp: &mut V,
                ws: &mut #p::Workspace<S, E, D>,
            ) -> ::core::result::Result<#p::AdjointStep<S, E, D>, Er>
            #adjoint_bounds
            {
                #adjoint_stored
            }

            #dense_methods
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::internals::shipped::text as shipped_text;
    use crate::internals::tableau::parse;
    use crate::internals::validate::validate;

    fn method(name: &str) -> Method {
        validate(parse(shipped_text(name).unwrap()).unwrap()).unwrap()
    }

    #[test]
    fn fsal_stage_is_dead_in_the_backward_step() {
        assert_eq!(
            live_stages(&method("dopri5")),
            [true, true, true, true, true, true, false]
        );
        assert_eq!(
            live_stages(&method("tsit5")),
            [true, true, true, true, true, true, false]
        );
        assert_eq!(live_stages(&method("bosh3")), [true, true, true, false]);
        // midpoint: b1 = 0, but stage 2 uses k1.
        assert_eq!(live_stages(&method("midpoint")), [true, true]);
        assert!(live_stages(&method("rk4")).iter().all(|&l| l));
        assert!(live_stages(&method("dopri8")).iter().all(|&l| l));
    }

    #[test]
    fn zero_coefficients_produce_no_code() {
        let code = adjoint(&method("dopri5")).to_string();
        assert!(
            !code.contains("k7"),
            "the FSAL stage is not rebuilt: {code}"
        );
        assert!(
            !code.contains("x7"),
            "the FSAL stage is not differentiated: {code}"
        );
        let code = step(&method("rk4")).to_string();
        // rk4's a31 = 0, so x3 is built from k2 alone.
        assert!(code.contains("let x3 = ws . stage_kept (0 , x , & [(h * :: neural_ode :: __private :: lit :: < E > (0.5) , & k2)])"), "{code}");
        // The stored-stage partner rebuilds nothing: no evaluation of the field.
        let code = adjoint_stored(&method("dopri5")).to_string();
        assert!(!code.contains(":: eval ("), "{code}");
        assert!(
            code.contains("stages [4]") && !code.contains("stages [5]"),
            "{code}"
        );
    }

    #[test]
    fn kept_stages_are_the_live_ones_but_the_first() {
        assert_eq!(kept_stages(&method("dopri5")), [1, 2, 3, 4, 5]);
        assert_eq!(kept_stages(&method("euler")), Vec::<usize>::new());
        assert_eq!(kept_stages(&method("rk4")), [1, 2, 3]);
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
