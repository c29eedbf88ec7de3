//! The impls that connect the user's struct to the runtime and to dfdx: `NeuralOde` (which
//! solver, which gradient method) and dfdx's `TensorCollection` over the struct's fields.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use crate::internals::attr::Grad;
use crate::internals::fields::{dtype_device_params, FieldCheck};

/// `impl NeuralOde for #ident { type Solver = #solver; const GRAD = … }`.
pub fn neural_ode_impl(item: &syn::ItemStruct, solver: &TokenStream, grad: Grad) -> TokenStream {
    let ident = &item.ident;
    let (impl_generics, ty_generics, where_clause) = item.generics.split_for_impl();
    let variant = Ident::new(grad.variant(), Span::call_site());
    quote! {
        #[automatically_derived]
        impl #impl_generics ::neural_ode::NeuralOde for #ident #ty_generics #where_clause {
            type Solver = #solver;
            const GRAD: ::neural_ode::GradMethod = ::neural_ode::GradMethod::#variant;
        }
    }
}

/// dfdx's `TensorCollection` for the struct's fields (except `#[neural_ode(skip)]` ones), so
/// `alloc_grads`, optimisers and safetensors work with no boilerplate.
///
/// A struct generic over its dtype and device (see [`dtype_device_params`]) with no skipped
/// fields gets the impl for its own `E` and `D` with `To<E2, D2>` = the struct at `E2, D2`, so
/// `to_dtype` and `to_device` rebuild it. Any other struct gets an impl for every dtype and
/// device its fields allow, with a marker `To` (a concrete struct names its dtype and device;
/// a skipped field has no conversion).
pub fn tensor_collection_impl(item: &syn::ItemStruct, skipped: &[bool]) -> TokenStream {
    let ident = &item.ident;
    let p = quote!(::neural_ode::__private);
    let convertible = dtype_device_params(&item.generics).filter(|_| !skipped.iter().any(|s| *s));
    let mut generics = item.generics.clone();
    let (e, d) = match &convertible {
        Some((e, d)) => (quote!(#e), quote!(#d)),
        None => {
            generics.params.push(syn::parse_quote!(__E: #p::Dtype));
            generics
                .params
                .push(syn::parse_quote!(__D: #p::Device<__E>));
            (quote!(__E), quote!(__D))
        }
    };
    let (_, ty_generics, _) = item.generics.split_for_impl();
    let (impl_generics, _, where_clause) = generics.split_for_impl();
    let mut predicates: Vec<TokenStream> = where_clause
        .map(|w| w.predicates.iter().map(|p| quote!(#p)).collect())
        .unwrap_or_default();
    if convertible.is_some() {
        // What dfdx's layers ask of a dtype to be built. No `FieldType: TensorCollection`
        // predicates here: they would hide the field types' own `To`, which `To` is built from.
        predicates.push(quote!(#e: #p::Dtype + #p::Float + #p::SampleUniform));
        predicates.push(quote!(#d: #p::Device<#e>));
    }
    let mut fields = Vec::new();
    let mut names = Vec::new();
    let mut members = Vec::new();
    for (i, (field, skip)) in item.fields.iter().zip(skipped).enumerate() {
        if *skip {
            continue;
        }
        let ty = &field.ty;
        if convertible.is_none() {
            predicates.push(quote!(#ty: #p::TensorCollection<#e, #d>));
        }
        let (member, name) = match &field.ident {
            Some(id) => (quote!(#id), id.to_string()),
            None => {
                let index = syn::Index::from(i);
                (quote!(#index), i.to_string())
            }
        };
        fields.push(quote!(Self::module(#name, |s| &s.#member, |s| &mut s.#member)));
        names.push(format_ident!("__field{}", i));
        members.push(member);
    }
    // dfdx implements `ModuleFields` for tuples of up to six fields; nest longer lists.
    let grouped = group(fields);
    let (to, build) = match &convertible {
        Some((e, d)) => {
            // The struct at `__E2, __D2`: its own parameters with those two replaced.
            let args = item.generics.params.iter().map(|param| match param {
                syn::GenericParam::Type(t) if t.ident == *e => quote!(__E2),
                syn::GenericParam::Type(t) if t.ident == *d => quote!(__D2),
                syn::GenericParam::Type(t) => {
                    let id = &t.ident;
                    quote!(#id)
                }
                syn::GenericParam::Lifetime(l) => {
                    let l = &l.lifetime;
                    quote!(#l)
                }
                syn::GenericParam::Const(c) => {
                    let id = &c.ident;
                    quote!(#id)
                }
            });
            let pattern = group(names.iter().map(|n| quote!(#n)).collect());
            let body = match &item.fields {
                syn::Fields::Named(_) => quote!(#ident { #(#members: #names),* }),
                _ => quote!(#ident ( #(#names),* )),
            };
            (quote!(#ident<#(#args),*>), quote!(|#pattern| #body))
        }
        None => (quote!(#p::NotConvertible), quote!(|_| #p::NotConvertible)),
    };
    quote! {
        #[automatically_derived]
        impl #impl_generics #p::TensorCollection<#e, #d> for #ident #ty_generics
        where #(#predicates,)*
        {
            type To<__E2: #p::Dtype, __D2: #p::Device<__E2>> = #to;

            fn iter_tensors<__V: #p::ModuleVisitor<Self, #e, #d>>(
                visitor: &mut __V,
            ) -> ::core::result::Result<::core::option::Option<Self::To<__V::E2, __V::D2>>, __V::Err> {
                visitor.visit_fields(#grouped, #build)
            }
        }
    }
}

/// A compile-time check that each field not marked `#[neural_ode(skip)]` is a dfdx module at
/// the dtype and device of `check`, spanned at the field's type: a field of another type is an
/// error there, whose message names `#[neural_ode(skip)]` (the runtime's `FieldModule`), rather
/// than a trait error where the model is used. In an anonymous const block, in a function never
/// called, with the struct's generics (and, for its own dtype and device, the bounds of the
/// generated `TensorCollection` impl).
pub fn field_checks(item: &syn::ItemStruct, skipped: &[bool], check: &FieldCheck) -> TokenStream {
    let p = quote!(::neural_ode::__private);
    // The struct's parameters, their bounds moved into the where clause (one place for each
    // parameter's bounds, as clippy asks of a function).
    let mut generics = item.generics.clone();
    let mut predicates: Vec<TokenStream> = Vec::new();
    for param in generics.params.iter_mut() {
        match param {
            syn::GenericParam::Type(t) => {
                let (id, bounds) = (&t.ident, std::mem::take(&mut t.bounds));
                if !bounds.is_empty() {
                    predicates.push(quote!(#id: #bounds));
                }
                t.eq_token = None;
                t.default = None;
            }
            syn::GenericParam::Lifetime(l) => {
                let (id, bounds) = (&l.lifetime, std::mem::take(&mut l.bounds));
                if !bounds.is_empty() {
                    predicates.push(quote!(#id: #bounds));
                }
            }
            syn::GenericParam::Const(c) => {
                c.eq_token = None;
                c.default = None;
            }
        }
    }
    predicates.extend(
        item.generics
            .where_clause
            .iter()
            .flat_map(|w| w.predicates.iter().map(|p| quote!(#p))),
    );
    let (impl_generics, _, _) = generics.split_for_impl();
    let (e, d) = match check {
        FieldCheck::Params(e, d) => {
            predicates.push(quote!(#e: #p::Dtype + #p::Float + #p::SampleUniform));
            predicates.push(quote!(#d: #p::Device<#e>));
            (quote!(#e), quote!(#d))
        }
        FieldCheck::Concrete(e, d) => (quote!(#e), quote!(#d)),
    };
    let asserts = item
        .fields
        .iter()
        .zip(skipped)
        .filter(|(_, skip)| !**skip)
        .map(|(field, _)| {
            let ty = &field.ty;
            quote_spanned!(ty.span()=> #p::assert_module::<#ty, #e, #d>();)
        });
    quote! {
        const _: () = {
            fn fields_are_modules #impl_generics () where #(#predicates,)* {
                #(#asserts)*
            }
        };
    }
}

fn group(items: Vec<TokenStream>) -> TokenStream {
    if items.len() <= 6 {
        return quote!((#(#items,)*));
    }
    let chunks: Vec<TokenStream> = items.chunks(6).map(|c| group(c.to_vec())).collect();
    group(chunks)
}
