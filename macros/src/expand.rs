//! The pipeline: attribute → tableau file → IR → validation → code. Only here are the pieces
//! joined; each is a plain function that unit tests call directly.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use crate::{attr, codegen, impls, load, tableau, validate};

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
    let solver = format_ident!("{}Solver", item.ident);
    let vis = &item.vis;
    let docs = codegen::docs(&method);
    let rk = codegen::runge_kutta_impl(&method, &solver);
    let neural_ode = impls::neural_ode_impl(item, &quote!(#solver), attr.grad);
    let collection = impls::tensor_collection_impl(item, skipped);
    let track = loaded_track.map(|path| {
        let path = path.to_string_lossy().into_owned();
        quote!(
            const _: &[u8] = ::core::include_bytes!(#path);
        )
    });
    Ok(quote! {
        #item

        #[doc = #docs]
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        #vis struct #solver;

        #rk
        #neural_ode
        #collection
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

/// Removes `#[neural_ode(skip)]` from fields, returning which fields had it.
fn strip_field_attrs(item: &mut syn::ItemStruct) -> syn::Result<Vec<bool>> {
    let mut skipped = Vec::new();
    for field in item.fields.iter_mut() {
        let mut skip = false;
        let mut error = None;
        field.attrs.retain(|a| {
            if !a.path().is_ident("neural_ode") {
                return true;
            }
            match a.parse_args::<syn::Ident>() {
                Ok(id) if id == "skip" => skip = true,
                _ => {
                    error = Some(syn::Error::new_spanned(
                        a,
                        "unknown field attribute, expected `#[neural_ode(skip)]`",
                    ))
                }
            }
            false
        });
        if let Some(e) = error {
            return Err(e);
        }
        skipped.push(skip);
    }
    Ok(skipped)
}

/// Names that are never dfdx modules: Rust's primitive types and the standard containers (dfdx
/// 0.13 implements `TensorCollection` for modules, tensors of constant shape and tuples of them).
const PLAIN_DATA: &[&str] = &[
    "f16",
    "f32",
    "f64",
    "i8",
    "i16",
    "i32",
    "i64",
    "i128",
    "isize",
    "u8",
    "u16",
    "u32",
    "u64",
    "u128",
    "usize",
    "bool",
    "char",
    "str",
    "String",
    "Vec",
    "VecDeque",
    "Option",
    "Box",
    "Rc",
    "Arc",
    "Cell",
    "RefCell",
    "HashMap",
    "BTreeMap",
    "HashSet",
    "BTreeSet",
    "PhantomData",
];

/// What `ty` is instead of a module, if it is plainly not one.
fn plain_data(ty: &syn::Type) -> Option<String> {
    match ty {
        syn::Type::Path(p) if p.qself.is_none() => {
            let last = p.path.segments.last()?.ident.to_string();
            PLAIN_DATA
                .contains(&last.as_str())
                .then(|| format!("a `{last}`"))
        }
        syn::Type::Reference(_) => Some("a reference".into()),
        syn::Type::Ptr(_) => Some("a pointer".into()),
        syn::Type::Array(_) => Some("an array".into()),
        syn::Type::Slice(_) => Some("a slice".into()),
        syn::Type::BareFn(_) => Some("a function pointer".into()),
        syn::Type::Paren(p) => plain_data(&p.elem),
        syn::Type::Group(g) => plain_data(&g.elem),
        _ => None,
    }
}

/// Every field must be a dfdx module or marked `#[neural_ode(skip)]`: report those that plainly
/// are not (a number, a container, an array) at the field, with the fix. Other types are checked
/// by the compiler where the model is used.
fn check_fields(item: &syn::ItemStruct, skipped: &[bool]) -> syn::Result<()> {
    let mut errors: Option<syn::Error> = None;
    for (i, (field, skip)) in item.fields.iter().zip(skipped).enumerate() {
        if *skip {
            continue;
        }
        if let Some(what) = plain_data(&field.ty) {
            let name = field
                .ident
                .as_ref()
                .map_or_else(|| i.to_string(), |id| id.to_string());
            let e = syn::Error::new_spanned(
                &field.ty,
                format!(
                    "field `{name}` is {what}, not a dfdx module; mark fields that hold no \
                     parameters with `#[neural_ode(skip)]`"
                ),
            );
            match &mut errors {
                Some(all) => all.combine(e),
                None => errors = Some(e),
            }
        }
    }
    errors.map_or(Ok(()), Err)
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
