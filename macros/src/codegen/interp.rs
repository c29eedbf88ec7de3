//! The interpolant's code: `interpolant_weights` (each `bᵢ(θ)` by Horner's rule) and
//! `interpolate` (`x + h Σᵢ bᵢ(θ) kᵢ` over the stages whose polynomial is not zero). Its
//! derivative is part of the one backward step (`adjoint.rs`).

use num_traits::Zero;
use proc_macro2::TokenStream;
use quote::quote;

use super::tokens::{index, k, lit, private};
use crate::internals::analysis::Interpolant;
use crate::internals::rational::{nonzero, to_f64};

/// `θ · (c₁ + θ · (c₂ + …))` by Horner's rule, zero coefficients omitted; `None` when all are
/// zero.
fn horner(row: &[num_rational::BigRational]) -> Option<TokenStream> {
    let mut inner: Option<TokenStream> = None;
    for c in row.iter().rev() {
        let lit = (!c.is_zero()).then(|| lit(to_f64(c)));
        inner = match (lit, inner) {
            (None, None) => None,
            (Some(l), None) => Some(l),
            (None, Some(e)) => Some(quote!(theta * (#e))),
            (Some(l), Some(e)) => Some(quote!(#l + theta * (#e))),
        };
    }
    inner.map(|e| quote!(theta * (#e)))
}

/// The `interpolant_weights` and `interpolate` methods.
pub fn methods(p: &Interpolant) -> TokenStream {
    let p_ = private();
    let weights = p.rows.iter().enumerate().map(|(i, row)| {
        let i = index(i);
        match horner(row) {
            Some(e) => quote!(w[#i] = #e;),
            None => quote!(w[#i] = <E as #p_::Zero>::zero();),
        }
    });
    // x + h Σ bᵢ(θ) kᵢ over the stages whose polynomial is not zero.
    let mut names = Vec::new();
    let mut terms = Vec::new();
    for (i, row) in p.rows.iter().enumerate() {
        if nonzero(row).is_empty() {
            continue;
        }
        let ki = k(i);
        let idx = index(i);
        names.push(quote!(let #ki = &ks[#idx];));
        terms.push(quote!((h * w[#idx], #ki)));
    }
    let n = index(p.rows.len());
    quote! {
        fn interpolant_weights<E: #p_::Real>(theta: E, w: &mut [E]) {
            #(#weights)*
        }

        fn interpolate<S, E, D>(
            h: E,
            x: &#p_::Tensor<S, E, D>,
            ks: &[#p_::Tensor<S, E, D>],
            theta: E,
        ) -> #p_::Tensor<S, E, D>
        where
            S: #p_::StateShape,
            E: #p_::Real,
            D: #p_::Backend<E>,
        {
            let mut w = [<E as #p_::Zero>::zero(); #n];
            Self::interpolant_weights(theta, &mut w);
            #(#names)*
            #p_::stage(x, &[#(#terms),*])
        }
    }
}
