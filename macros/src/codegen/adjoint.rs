//! The one backward step, `RungeKutta::adjoint_step`: reverse-mode differentiation of `step`,
//! optionally with the stage states taken from the stage store and with the cotangents of
//! outputs interpolated inside the step folded in.
//!
//! With stage states `X_i = x + h Σ_j a_ij k_j`, `k_i = f(t + c_i h, X_i)` and
//! `y = x + h Σ_i b_i k_i`, the cotangents are, for `i = s … 1`,
//! `k̄_i = h (b_i ȳ + ō_i + Σ_{j>i} a_ji X̄_j)`, `X̄_i = J_f(X_i)ᵀ k̄_i`, and `x̄ = ȳ + Σ_i X̄_i`,
//! where `ō_i = Σⱼ bᵢ(θⱼ) ōⱼ` gathers the outputs inside the step. No division by `b_i`, so
//! stages with `b_i = 0` need no special case.
//!
//! What exists only for a step with outputs (the stages only the interpolant reads, the
//! derivatives only their rebuild needs, their cotangents) is an `Option` in the generated code,
//! `None` without outputs: every present term is added in the same order as a sweep written for
//! that case alone would add it, so one body serves both.

use num_rational::BigRational;
use num_traits::Zero;
use proc_macro2::{Ident, TokenStream};
use quote::quote;

use super::tokens::{clone, h_times, index, k, k_bar, lit, none, private, some, time_at, x, x_bar};
use crate::internals::analysis::{Analysis, Stored, When};
use crate::internals::rational::{nonzero, to_f64};

/// The body of `RungeKutta::adjoint_step`, after `input` is taken apart into `t`, `h`, `x`,
/// `y_bar`, `stored` and `outputs`.
pub fn adjoint(an: &Analysis) -> TokenStream {
    let p = private();
    let stages = &an.stages;
    let live: Vec<usize> = (0..stages.len())
        .filter(|&i| stages[i].live.ever())
        .collect();
    let xs: Vec<Ident> = live.iter().map(|&i| x(i)).collect();
    let evals = if stages.iter().any(|st| st.needs_k.ever()) {
        quote!(let mut evals = 0usize;)
    } else {
        quote!(let evals = 0usize;)
    };
    let stored = stored_arm(an, &live);
    let rebuild = rebuild(an, &live);
    let sweep = sweep(an, &live);
    quote! {
        #evals
        let (#(#xs,)*) = match stored {
            #stored
            _ => {
                #(#rebuild)*
                (#(#xs,)*)
            }
        };
        #(#sweep)*
        Ok(#p::AdjointStep { x_bar, evals })
    }
}

/// The match arm that takes the live stage states from the stage store: the step's input, the
/// kept stages, the step's result. Where the store does not serve every stage live with
/// outputs, the arm is for steps without outputs only (the others rebuild).
fn stored_arm(an: &Analysis, live: &[usize]) -> TokenStream {
    let source = |i: usize| {
        an.stages[i].stored.map(|source| match source {
            Stored::Input => clone(quote!(x)),
            Stored::Kept(j) => {
                let j = index(j);
                clone(quote!(&stored.stages[#j]))
            }
            Stored::Result => clone(quote!(stored.y)),
        })
    };
    let mut states = Vec::new();
    for &i in live {
        let state = match (an.stages[i].live, source(i)) {
            (When::Always, Some(state)) => state,
            (When::WithOutputs, Some(state)) if an.stored_covers_outputs => {
                quote!(outputs.map(|_| #state))
            }
            (When::WithOutputs, _) => none(),
            // Not reached: the kept stages are the stages always live but the first. Without a
            // stored arm, every step rebuilds.
            _ => return TokenStream::new(),
        };
        states.push(state);
    }
    let guard = (!an.stored_covers_outputs).then(|| quote!(if outputs.is_none()));
    let arm = some(quote!(stored));
    quote!(#arm #guard => (#(#states,)*),)
}

/// The rebuild of the live stage states from `x`, in stage order, with the derivatives later
/// live stages need. Stage `i`'s state goes into slot `i`: live stage states coexist until their
/// products.
fn rebuild(an: &Analysis, live: &[usize]) -> Vec<TokenStream> {
    let p = private();
    let stages = &an.stages;
    let mut code = Vec::new();
    for &i in live {
        let st = &stages[i];
        let (xi, ki) = (x(i), k(i));
        // The derivatives this stage reads that exist only with outputs: bound by reference
        // where the state is built.
        let mut optional = Vec::new();
        let terms: Vec<TokenStream> = nonzero(&st.row)
            .into_iter()
            .map(|(j, a)| {
                let coef = h_times(a);
                let kj = k(j);
                if stages[j].needs_k == When::Always {
                    quote!((#coef, &#kj))
                } else {
                    optional.push(kj.clone());
                    quote!((#coef, #kj))
                }
            })
            .collect();
        let state = if terms.is_empty() {
            clone(quote!(x))
        } else {
            let slot = index(i);
            quote!(ws.stage(#slot, x, &[#(#terms),*]))
        };
        let state = match (st.live, optional.as_slice()) {
            (When::Always, _) => state,
            (_, []) => quote!(outputs.map(|_| #state)),
            (_, [kj]) => quote!(#kj.as_ref().map(|#kj| #state)),
            (_, ks) => {
                let pattern = ks.iter().map(|kj| some(quote!(#kj)));
                let wrapped = some(state);
                let none = none();
                quote!(if let (#(#pattern,)*) = (#(&#ks,)*) { #wrapped } else { #none })
            }
        };
        code.push(quote!(let #xi = #state;));
        let ti = time_at(to_f64(&st.c));
        let eval = |xi: TokenStream| {
            let xi = clone(xi);
            quote! {{
                evals += 1;
                #p::eval(f, #ti, #xi)
            }}
        };
        match (st.needs_k, st.live) {
            (When::Never, _) => {}
            (When::Always, _) => {
                let xi = clone(quote!(&#xi));
                code.push(quote! {
                    evals += 1;
                    let #ki = #p::eval(f, #ti, #xi);
                });
            }
            (When::WithOutputs, When::Always) => {
                let eval = eval(quote!(&#xi));
                code.push(quote!(let #ki = outputs.map(|_| #eval);));
            }
            (When::WithOutputs, _) => {
                let eval = eval(quote!(#xi));
                code.push(quote!(let #ki = #xi.as_ref().map(|#xi| #eval);));
            }
        }
    }
    code
}

/// The reverse sweep over the live stages, one vector–Jacobian product each, and the cotangent
/// of `x`.
fn sweep(an: &Analysis, live: &[usize]) -> Vec<TokenStream> {
    let p = private();
    let stages = &an.stages;
    // Stage cotangents go through the slot after the stage states'.
    let slot = index(stages.len());
    let mut code = Vec::new();
    for &i in live.iter().rev() {
        let st = &stages[i];
        // `(coefficient, term, present in every step)`
        let mut terms: Vec<(TokenStream, TokenStream, bool)> = Vec::new();
        if let Some(b) = value(&st.b) {
            terms.push((h_times(b), quote!(y_bar), true));
        }
        if st.output {
            let i = index(i);
            terms.push((quote!(h), quote!(outputs.map(|o| &o[#i])), false));
        }
        for (j, later) in stages.iter().enumerate().skip(i + 1) {
            if !later.live.ever() {
                continue;
            }
            if let Some(a) = value(&later.row[i]) {
                let xj_bar = x_bar(j);
                terms.push(match later.live {
                    When::Always => (h_times(a), quote!(&#xj_bar), true),
                    _ => (h_times(a), quote!(#xj_bar.as_ref()), false),
                });
            }
        }
        // Terms that exist only with outputs are `Option`s; then all are (one slice type).
        let all_always = terms.iter().all(|(.., always)| *always);
        let terms = terms.iter().map(|(c, v, always)| {
            let v = if *always && !all_always {
                some(v.clone())
            } else {
                v.clone()
            };
            quote!((#c, #v))
        });
        let combine = quote!(ws.combine(#slot, x, &[#(#terms),*]));
        let (xi, ki_bar, xi_bar) = (x(i), k_bar(i), x_bar(i));
        let ti = time_at(to_f64(&st.c));
        code.push(match st.live {
            When::Always => quote! {
                let #ki_bar = #combine;
                let #xi_bar = vjp(#ti, #xi, #ki_bar)?;
            },
            _ => quote! {
                let #xi_bar = #xi
                    .map(|#xi| {
                        let #ki_bar = #combine;
                        vjp(#ti, #xi, #ki_bar)
                    })
                    .transpose()?;
            },
        });
    }
    let one = lit(1.0);
    let always = live.iter().all(|&i| stages[i].live == When::Always);
    let terms = live.iter().map(|&i| {
        let xi_bar = x_bar(i);
        match (always, stages[i].live) {
            (true, _) => quote!((#one, &#xi_bar)),
            (false, When::Always) => {
                let term = some(quote!(&#xi_bar));
                quote!((#one, #term))
            }
            (false, _) => quote!((#one, #xi_bar.as_ref())),
        }
    });
    code.push(quote!(let x_bar = #p::stage(y_bar, &[#(#terms),*]);));
    code
}

/// A coefficient's value, if it is not exactly zero.
fn value(q: &BigRational) -> Option<f64> {
    (!q.is_zero()).then(|| to_f64(q))
}
