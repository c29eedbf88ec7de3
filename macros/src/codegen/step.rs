//! The forward step, `RungeKutta::step`: straight-line stage arithmetic with the coefficients
//! inlined, exact zeros dropped.

use num_rational::BigRational;
use proc_macro2::TokenStream;
use quote::{quote, ToTokens};

use super::tokens::{clone, h_times, k, none, private, some, time_at, x};
use crate::internals::analysis::{Analysis, When};
use crate::internals::rational::{nonzero, to_f64};
use crate::internals::validate::Method;

/// `(h * w_j, &k_j)` for every nonzero weight `w_j`.
pub fn k_terms<'a>(weights: impl IntoIterator<Item = &'a BigRational>) -> Vec<TokenStream> {
    nonzero(weights)
        .into_iter()
        .map(|(j, w)| {
            let coef = h_times(w);
            let kj = k(j);
            quote!((#coef, &#kj))
        })
        .collect()
}

/// The body of `RungeKutta::step`.
pub fn step(m: &Method, an: &Analysis) -> TokenStream {
    let p = private();
    let s = an.s;
    let mut body = Vec::new();
    let x_clone = clone(quote!(x));
    body.push(quote! {
        let mut evals = 0usize;
        let k1 = match k1 {
            Some(k1) => k1,
            None => {
                evals += 1;
                #p::eval(f, t, #x_clone)
            }
        };
        let k1 = ws.derivative(k1);
    });
    for (i, stage) in an.stages.iter().enumerate().take(s).skip(1) {
        let (xi, ki) = (x(i), k(i));
        let ti = time_at(to_f64(&stage.c));
        let terms = k_terms(&stage.row);
        if m.fsal && i == s - 1 {
            // The last stage state is the step's result: a fresh buffer.
            let state = if terms.is_empty() {
                x_clone.clone()
            } else {
                quote!(#p::stage(x, &[#(#terms),*]))
            };
            let y = clone(quote!(&y));
            body.push(quote! {
                let y = #state;
                evals += 1;
                let #ki = ws.derivative(#p::eval(f, #ti, #y));
            });
            continue;
        }
        let state = match (terms.is_empty(), stage.live == When::Always) {
            // A stage state every backward step needs: the workspace keeps it when the solve
            // stores stages (`CheckpointPolicy::AllStages`), else it goes through slot 0 like
            // the others.
            (true, true) => quote!(ws.kept(#x_clone)),
            (false, true) => quote!(ws.stage_kept(0, x, &[#(#terms),*])),
            (true, false) => x_clone.clone(),
            // Every other stage state goes through slot 0: each is consumed before the next is
            // built.
            (false, false) => quote!(ws.stage(0, x, &[#(#terms),*])),
        };
        body.push(quote! {
            let #xi = #state;
            evals += 1;
            let #ki = ws.derivative(#p::eval(f, #ti, #xi));
        });
    }
    if !m.fsal {
        let terms = k_terms(m.t.b.iter().map(|b| &b.value));
        body.push(quote!(let y = #p::stage(x, &[#(#terms),*]);));
    }
    let err = match &m.e {
        Some(e) => {
            let terms = k_terms(e);
            some(quote!(ws.combine(1, x, &[#(#terms),*])))
        }
        None => none(),
    };
    let k_last = if m.fsal {
        some(k(s - 1).into_token_stream())
    } else {
        none()
    };
    quote! {
        #(#body)*
        let err = #err;
        #p::Step { y, err, k1, k_last: #k_last, evals }
    }
}
