//! The `RungeKutta` impl's constants: the tableau rounded to `f64`, the kept stages, the
//! interpolant.

use proc_macro2::{Literal, TokenStream};
use quote::quote;

use super::tokens::{float, index, option};
use crate::internals::analysis::Analysis;
use crate::internals::rational::{to_f64, Coef};
use crate::internals::validate::Method;

/// `const NAME … ; const A … ;` for the `RungeKutta` impl: the tableau, rounded, the kept
/// stages and the interpolant.
pub fn constants(m: &Method, an: &Analysis) -> TokenStream {
    let t = &m.t;
    let (name, title, reference) = (&t.name, &t.title, &t.reference);
    let stages = index(m.s);
    let order = Literal::u32_unsuffixed(t.order);
    let embedded = option(t.embedded_order.map(|q| {
        let q = Literal::u32_unsuffixed(q);
        quote!(#q)
    }));
    let fsal = m.fsal;
    let list = |v: &[Coef]| {
        let items = v.iter().map(|c| float(to_f64(&c.value)));
        quote!(&[#(#items),*])
    };
    let c = list(&t.c);
    let b = list(&t.b);
    let rows: Vec<TokenStream> = m.a.iter().map(|row| list(row)).collect();
    let b_err = option(m.e.as_ref().map(|e| {
        let items = e.iter().map(|q| float(to_f64(q)));
        quote!(&[#(#items),*])
    }));
    let kept = an.kept.iter().map(|&i| index(i));
    let p = &an.interpolant;
    let interpolant_stages = index(p.rows.len());
    let interpolant_order = Literal::u32_unsuffixed(p.order);
    let hermite = p.hermite;
    let interpolant = p.rows.iter().map(|row| {
        let items = row.iter().map(|q| float(to_f64(q)));
        quote!(&[#(#items),*])
    });
    quote! {
        const NAME: &'static str = #name;
        const TITLE: &'static str = #title;
        const REFERENCE: &'static str = #reference;
        const STAGES: usize = #stages;
        const ORDER: u32 = #order;
        const EMBEDDED_ORDER: Option<u32> = #embedded;
        const FSAL: bool = #fsal;
        const C: &'static [f64] = #c;
        const A: &'static [&'static [f64]] = &[#(#rows),*];
        const B: &'static [f64] = #b;
        const B_ERR: Option<&'static [f64]> = #b_err;
        const KEPT_STAGES: &'static [usize] = &[#(#kept),*];
        const INTERPOLANT_STAGES: usize = #interpolant_stages;
        const INTERPOLANT: &'static [&'static [f64]] = &[#(#interpolant),*];
        const INTERPOLANT_ORDER: u32 = #interpolant_order;
        const HERMITE: bool = #hermite;
    }
}
