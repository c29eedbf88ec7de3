//! The backward step: which stages are live, the rebuild (or lookup) of their states, and the
//! reverse sweep with one vector–Jacobian product per live stage, shared by `adjoint_step`,
//! `adjoint_step_stored` and the dense-output variants (`interp.rs`).

use num_rational::BigRational;
use num_traits::Zero;
use proc_macro2::{Ident, Literal, TokenStream};
use quote::quote;

use super::{h_times, k, k_bar, row_state, time_at, x, x_bar};
use crate::internals::validate::Method;

/// Which stages can influence the step's result: `b_i ≠ 0`, or some later live stage uses
/// `k_i`. Dead stages (such as the FSAL stage) are neither rebuilt nor differentiated.
pub fn live_stages(m: &Method) -> Vec<bool> {
    Stages::of(m).live()
}

/// The body of `RungeKutta::adjoint_step`: reverse-mode differentiation of `step`.
///
/// With stage states `X_i = x + h Σ_j a_ij k_j`, `k_i = f(t + c_i h, X_i)` and
/// `y = x + h Σ_i b_i k_i`, the cotangents are, for `i = s … 1`,
/// `k̄_i = h (b_i ȳ + Σ_{j>i} a_ji X̄_j)`, `X̄_i = J_f(X_i)ᵀ k̄_i`, and `x̄ = ȳ + Σ_i X̄_i`.
/// No division by `b_i`, so stages with `b_i = 0` need no special case.
pub fn adjoint(m: &Method) -> TokenStream {
    adjoint_with(m, false)
}

/// The body of `RungeKutta::adjoint_step_stored`: the same sweep, with the stage states taken
/// from `stages` (as recorded by `step`, in [`kept_stages`] order) instead of rebuilt.
pub fn adjoint_stored(m: &Method) -> TokenStream {
    adjoint_with(m, true)
}

fn adjoint_with(m: &Method, stored: bool) -> TokenStream {
    let sys = Stages::of(m);
    let sources = stored.then(|| {
        let kept = kept_stages(m);
        stored_states(&sys, &kept, None).expect("the kept stages are the live ones but the first")
    });
    let body = sweep(&sys, sources.as_deref(), SweepKind::Plain);
    let evals_decl = if !stored && sys.needs_k().iter().any(|&n| n) {
        quote!(let mut evals = 0usize;)
    } else {
        quote!(let evals = 0usize;)
    };
    quote! {
        #evals_decl
        #body
    }
}

/// The where clause of every generated backward step (`adjoint_step` and its stored and dense
/// variants).
pub(crate) fn adjoint_bounds() -> TokenStream {
    let p = quote!(::neural_ode::__private);
    quote! {
        where
            S: #p::StateShape,
            E: #p::Real,
            D: #p::Backend<E>,
            F: #p::VectorField<S, E, D> + ?::core::marker::Sized,
            V: ::core::ops::FnMut(E, #p::Tensor<S, E, D>, #p::Tensor<S, E, D>) -> ::core::result::Result<#p::Tensor<S, E, D>, Er>,
    }
}

/// The stages a backward sweep runs over: the method's own, or (for dense output) those plus the
/// interpolant's extra stage `f(t + h, y)`, with a flag for each stage whose cotangent receives
/// output terms.
pub(crate) struct Stages {
    pub s: usize,
    pub a: Vec<Vec<BigRational>>,
    pub b: Vec<BigRational>,
    pub c: Vec<BigRational>,
    /// Stage `i`'s cotangent gets `h · dense[i]` (the outputs inside the step).
    pub dense: Vec<bool>,
}

impl Stages {
    pub fn of(m: &Method) -> Stages {
        Stages {
            s: m.s,
            a: m.a
                .iter()
                .map(|row| row.iter().map(|c| c.value.clone()).collect())
                .collect(),
            b: m.t.b.iter().map(|b| b.value.clone()).collect(),
            c: m.t.c.iter().map(|c| c.value.clone()).collect(),
            dense: vec![false; m.s],
        }
    }

    /// `b_i ≠ 0`, an output term, or some later live stage uses `k_i`.
    pub fn live(&self) -> Vec<bool> {
        let s = self.s;
        let mut live = vec![false; s];
        for i in (0..s).rev() {
            live[i] = !self.b[i].is_zero()
                || self.dense[i]
                || (i + 1..s).any(|j| live[j] && !self.a[j][i].is_zero());
        }
        live
    }

    /// `k_j` is needed while rebuilding iff a later live stage uses it.
    pub fn needs_k(&self) -> Vec<bool> {
        let live = self.live();
        (0..self.s)
            .map(|j| (j + 1..self.s).any(|i| live[i] && !self.a[i][j].is_zero()))
            .collect()
    }
}

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum SweepKind {
    Plain,
    Dense,
}

/// The 0-based indices of the stage states `step` records for the backward step (the live
/// stages but the first, whose state is the step's input).
pub fn kept_stages(m: &Method) -> Vec<usize> {
    let live = live_stages(m);
    (1..m.s).filter(|&i| live[i]).collect()
}

/// Where a backward step finds each live stage state of `sys` without rebuilding it: stage 0 is
/// the step's input `x`, the stages of `kept` are `stages[0], stages[1], …` in that order, and
/// `y_stage` (the FSAL stage, or the Hermite fallback's extra stage: both have the state `y`)
/// is the step's result `y`. One expression per stage (dead stages get none that is used);
/// `None` when some live stage is in none of these places and so would need a rebuild.
pub(crate) fn stored_states(
    sys: &Stages,
    kept: &[usize],
    y_stage: Option<usize>,
) -> Option<Vec<TokenStream>> {
    let live = sys.live();
    (0..sys.s)
        .map(|i| {
            if !live[i] {
                return Some(TokenStream::new());
            }
            if i == 0 {
                return Some(quote!(::core::clone::Clone::clone(x)));
            }
            if let Some(j) = kept.iter().position(|&kept_i| kept_i == i) {
                let j = Literal::usize_unsuffixed(j);
                return Some(quote!(::core::clone::Clone::clone(&stages[#j])));
            }
            (y_stage == Some(i)).then(|| quote!(::core::clone::Clone::clone(y)))
        })
        .collect()
}

/// The rebuild of the live stage states (or, given `stored` from [`stored_states`], their
/// lookup) and the reverse sweep, ending in `Ok(AdjointStep { x_bar, evals })`; `evals` is
/// declared by the caller.
pub(crate) fn sweep(sys: &Stages, stored: Option<&[TokenStream]>, kind: SweepKind) -> TokenStream {
    let s = sys.s;
    let live = sys.live();
    let needs_k = sys.needs_k();

    let mut rebuild = Vec::new();
    for i in 0..s {
        if !live[i] {
            continue;
        }
        if let Some(sources) = stored {
            let xi = x(i);
            let state = &sources[i];
            rebuild.push(quote!(let #xi = #state;));
            continue;
        }
        let xi = x(i);
        // Live stage states coexist until their products: one slot each.
        let state = if i == 0 {
            quote!(::core::clone::Clone::clone(x))
        } else {
            row_state(&sys.a[i], Some(i))
        };
        rebuild.push(quote!(let #xi = #state;));
        if needs_k[i] {
            let ki = k(i);
            let ti = time_at(&sys.c[i]);
            rebuild.push(quote! {
                evals += 1;
                let #ki = ::neural_ode::__private::eval(f, #ti, ::core::clone::Clone::clone(&#xi));
            });
        }
    }
    let live_xs: Vec<Ident> = (0..s).filter(|&i| live[i]).map(x).collect();

    let mut sweep = Vec::new();
    for i in (0..s).rev() {
        if !live[i] {
            continue;
        }
        let mut terms = Vec::new();
        if !sys.b[i].is_zero() {
            let coef = h_times(&sys.b[i]);
            terms.push(quote!((#coef, y_bar)));
        }
        if kind == SweepKind::Dense && sys.dense[i] {
            let idx = Literal::usize_unsuffixed(i);
            terms.push(quote!((h, &dense[#idx])));
        }
        for (j, row) in sys.a.iter().enumerate().skip(i + 1) {
            if live[j] && !row[i].is_zero() {
                let coef = h_times(&row[i]);
                let xj_bar = x_bar(j);
                terms.push(quote!((#coef, &#xj_bar)));
            }
        }
        let (first, rest) = terms
            .split_first()
            .map(|(f, r)| (f.clone(), r.to_vec()))
            .unwrap_or_default();
        let ki_bar = k_bar(i);
        let xi = x(i);
        let xi_bar = x_bar(i);
        let ti = time_at(&sys.c[i]);
        let kbar_slot = Literal::usize_unsuffixed(s);
        sweep.push(quote! {
            let #ki_bar = ws.combine(#kbar_slot, #first, &[#(#rest),*]);
            let #xi_bar = vjp(#ti, #xi, #ki_bar)?;
        });
    }
    let sum_terms: Vec<TokenStream> = (0..s)
        .filter(|&i| live[i])
        .map(|i| {
            let xi_bar = x_bar(i);
            quote!((::neural_ode::__private::lit::<E>(1.0), &#xi_bar))
        })
        .collect();
    quote! {
        let (#(#live_xs,)*) = {
            #(#rebuild)*
            (#(#live_xs,)*)
        };
        #(#sweep)*
        let x_bar = ::neural_ode::__private::stage(y_bar, &[#(#sum_terms),*]);
        ::core::result::Result::Ok(::neural_ode::__private::AdjointStep { x_bar, evals })
    }
}
