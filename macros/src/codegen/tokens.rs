//! Token helpers shared by the generators: paths, literals, `h * lit`, stage times, the names of
//! stage values. A leaf: it imports nothing of the crate, so every generator can use it.
//!
//! The generated `RungeKutta` impl sits in an anonymous `const _: () = { … };` block that opens
//! with [`imports`] (as serde's derives do): short paths inside, and nothing named outside, so no
//! name reaches the user's scope and no user item can clash with one.
//!
//! Names follow the paper, 1-based: stage `i` (0-based here) has the state `x{i+1}`, the
//! derivative `k{i+1}` and the cotangents `x{i+1}_bar`, `k{i+1}_bar`.

use proc_macro2::{Ident, Literal, TokenStream};
use quote::{format_ident, quote};

/// The imports that open the block around the generated `RungeKutta` impl. Each is used by
/// every expansion (`step` uses all but `Result`, `Ok` and `lit`; `adjoint_step` uses those).
pub fn imports() -> TokenStream {
    quote! {
        use ::core::clone::Clone;
        use ::core::option::Option::{self, None, Some};
        use ::core::result::Result::{self, Ok};
        use ::neural_ode::__private::{self as __p, lit};
    }
}

/// `const _: () = { imports; item };`: the generated `RungeKutta` impl, the imports visible to
/// it alone. (It holds no token of the user's but the solver's name.)
pub fn block(item: TokenStream) -> TokenStream {
    let imports = imports();
    quote! {
        const _: () = {
            #imports
            #item
        };
    }
}

/// The runtime's names for generated code (`::neural_ode::__private`, imported by
/// [`imports`]).
pub fn private() -> TokenStream {
    quote!(__p)
}

/// A float literal token (negative values as `-lit`).
pub fn float(v: f64) -> TokenStream {
    let lit = Literal::f64_unsuffixed(v.abs());
    if v < 0.0 {
        quote!(-#lit)
    } else {
        quote!(#lit)
    }
}

/// `lit::<E>(v)`: a coefficient in the state's float type (`lit` is imported by [`imports`]).
pub fn lit(v: f64) -> TokenStream {
    let v = float(v);
    quote!(lit::<E>(#v))
}

/// `h * lit::<E>(v)`, or `h` when `v` is one (`h · 1 = h` in every float type).
pub fn h_times(v: f64) -> TokenStream {
    if v == 1.0 {
        quote!(h)
    } else {
        let v = lit(v);
        quote!(h * #v)
    }
}

/// The time at node `c`: `t`, `t + h` or `t + h * lit::<E>(c)`.
pub fn time_at(c: f64) -> TokenStream {
    if c == 0.0 {
        quote!(t)
    } else {
        let hc = h_times(c);
        quote!(t + #hc)
    }
}

/// An unsuffixed `usize` literal (an index, a slot).
pub fn index(i: usize) -> Literal {
    Literal::usize_unsuffixed(i)
}

/// Stage `i`'s state.
pub fn x(i: usize) -> Ident {
    format_ident!("x{}", i + 1)
}

/// Stage `i`'s derivative.
pub fn k(i: usize) -> Ident {
    format_ident!("k{}", i + 1)
}

/// The cotangent of stage `i`'s state.
pub fn x_bar(i: usize) -> Ident {
    format_ident!("x{}_bar", i + 1)
}

/// The cotangent of stage `i`'s derivative.
pub fn k_bar(i: usize) -> Ident {
    format_ident!("k{}_bar", i + 1)
}

/// `Clone::clone(e)`.
pub fn clone(e: TokenStream) -> TokenStream {
    quote!(Clone::clone(#e))
}

/// `Some(e)`.
pub fn some(e: TokenStream) -> TokenStream {
    quote!(Some(#e))
}

/// `None`.
pub fn none() -> TokenStream {
    quote!(None)
}

/// `Some(e)` or `None`.
pub fn option(e: Option<TokenStream>) -> TokenStream {
    e.map_or_else(none, some)
}

/// The bounds of `step`, and with `vjp` those of `adjoint_step` (its closure's type `V`).
pub fn bounds(vjp: bool) -> TokenStream {
    let p = private();
    let v = vjp.then(|| {
        quote! {
            V: ::core::ops::FnMut(E, #p::Tensor<S, E, D>, #p::Tensor<S, E, D>)
                -> Result<#p::Tensor<S, E, D>, Er>,
        }
    });
    quote! {
        where
            S: #p::StateShape,
            E: #p::Real,
            D: #p::Backend<E>,
            F: #p::VectorField<S, E, D> + ?::core::marker::Sized,
            #v
    }
}
