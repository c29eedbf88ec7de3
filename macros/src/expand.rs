//! The pipeline: attribute → tableau file → IR → validation → stage analysis → code. Only here
//! are the front end (`internals`) and the back end (`codegen`) joined; each piece is a plain
//! function that unit tests call directly.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use crate::codegen::{self, impls};
use crate::internals::fields::{check_fields, field_check, plain_data, strip_field_attrs};
use crate::internals::{analysis, attr, load, tableau, validate};

/// Expands `#[neural_ode(args)] item`.
pub fn expand(args: TokenStream, input: TokenStream) -> TokenStream {
    let mut item: syn::ItemStruct = match syn::parse2(input) {
        Ok(item) => item,
        Err(e) => {
            return syn::Error::new(
                e.span(),
                "#[neural_ode] applies to a struct whose fields are dfdx modules",
            )
            .to_compile_error();
        }
    };
    let skipped = match strip_field_attrs(&mut item) {
        Ok(s) => s,
        Err(e) => return fallback(&item, &[], e),
    };
    if let Err(e) = check_fields(&item, &skipped) {
        // The stand-in impls leave the offending fields out, so nothing else fails on them.
        let skipped: Vec<bool> = item
            .fields
            .iter()
            .zip(&skipped)
            .map(|(f, s)| *s || plain_data(&f.ty).is_some())
            .collect();
        return fallback(&item, &skipped, e);
    }
    match generate(args, &item, &skipped) {
        Ok(tokens) => tokens,
        Err(e) => fallback(&item, &skipped, e),
    }
}

/// Parses `args` and produces the struct plus everything generated for it.
pub fn generate(
    args: TokenStream,
    item: &syn::ItemStruct,
    skipped: &[bool],
) -> syn::Result<TokenStream> {
    let attr = attr::parse(args)?;
    let (method, loaded_track) = method(&attr.source)?;
    let analysis = analysis::analyse(&method);
    let solver = format_ident!("{}Solver", item.ident);
    let vis = &item.vis;
    let docs = codegen::docs(&method);
    let rk = codegen::runge_kutta_impl(&method, &analysis, &solver);
    let neural_ode = impls::neural_ode_impl(item, &quote!(#solver), attr.grad);
    let collection = impls::tensor_collection_impl(item, skipped);
    let checks = field_check(item, skipped).map(|check| impls::field_checks(item, skipped, &check));
    let track = loaded_track.map(|path| {
        let path = path.to_string_lossy().into_owned();
        quote!(
            const _: &[u8] = ::core::include_bytes!(#path);
        )
    });
    // The solver's impl in a block with its imports; the impls that carry the user's tokens
    // (field types, generics, bounds) outside it, with absolute paths, where those tokens mean
    // what they mean to the user.
    let rk = codegen::block(rk);
    Ok(quote! {
        #item

        #[doc = #docs]
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        #vis struct #solver;

        #rk
        #neural_ode
        #collection
        #checks
        #track
    })
}

/// Loads, parses and validates the tableau that `source` names. Semantic problems are combined
/// into one error spanned on the attribute's path literal. Also returns the file to track.
pub fn method(
    source: &attr::Source,
) -> syn::Result<(validate::Method, Option<std::path::PathBuf>)> {
    let loaded = load::load(source)?;
    let span = source.span();
    let fail = |problems: Vec<String>| {
        let mut errors = problems
            .into_iter()
            .map(|p| syn::Error::new(span, format!("in `{}`: {p}", loaded.display)));
        let mut first = errors
            .next()
            .unwrap_or_else(|| syn::Error::new(span, "invalid tableau"));
        for e in errors {
            first.combine(e);
        }
        first
    };
    let tableau = tableau::parse(&loaded.text).map_err(fail)?;
    let method = validate::validate(tableau).map_err(fail)?;
    Ok((method, loaded.track))
}

/// On error: the error, the struct itself and stand-in impls, so that the user's other code
/// does not drown in follow-on errors.
fn fallback(item: &syn::ItemStruct, skipped: &[bool], error: syn::Error) -> TokenStream {
    let error = error.to_compile_error();
    let stub = quote!(::neural_ode::__private::Invalid);
    let neural_ode = impls::neural_ode_impl(item, &stub, attr::Grad::Symplectic);
    let collection = if skipped.len() == item.fields.len() {
        impls::tensor_collection_impl(item, skipped)
    } else {
        TokenStream::new()
    };
    quote! {
        #error
        #item
        #neural_ode
        #collection
    }
}
