//! The model struct's fields: `#[neural_ode(skip)]`, the fields that are plainly not dfdx
//! modules, and the struct's dtype and device parameters.

use proc_macro2::Ident;

/// Removes `#[neural_ode(skip)]` from fields, returning which fields had it.
pub fn strip_field_attrs(item: &mut syn::ItemStruct) -> syn::Result<Vec<bool>> {
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
pub fn plain_data(ty: &syn::Type) -> Option<String> {
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
pub fn check_fields(item: &syn::ItemStruct, skipped: &[bool]) -> syn::Result<()> {
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

/// The struct's dtype and device parameters `(E, D)`: type parameters with a bound on `D` whose
/// last path segment is `Device<E>` or `Storage<E>` (dfdx's, or this crate's `Device`), in the
/// parameter list or the where clause.
pub fn dtype_device_params(generics: &syn::Generics) -> Option<(Ident, Ident)> {
    let params: Vec<&Ident> = generics.type_params().map(|p| &p.ident).collect();
    let dtype_of = |bound: &syn::TypeParamBound| -> Option<Ident> {
        let syn::TypeParamBound::Trait(t) = bound else {
            return None;
        };
        // `neural_ode::Device` is stronger than what `To` may assume of another device.
        if t.path
            .segments
            .first()
            .is_some_and(|s| s.ident == "neural_ode")
        {
            return None;
        }
        let seg = t.path.segments.last()?;
        if seg.ident != "Device" && seg.ident != "Storage" {
            return None;
        }
        let syn::PathArguments::AngleBracketed(args) = &seg.arguments else {
            return None;
        };
        match args.args.first()? {
            syn::GenericArgument::Type(syn::Type::Path(tp)) => {
                let e = tp.path.get_ident()?;
                params.contains(&e).then(|| e.clone())
            }
            _ => None,
        }
    };
    for p in generics.type_params() {
        if let Some(e) = p.bounds.iter().find_map(dtype_of) {
            return Some((e, p.ident.clone()));
        }
    }
    for pred in generics.where_clause.iter().flat_map(|w| &w.predicates) {
        let syn::WherePredicate::Type(pt) = pred else {
            continue;
        };
        let syn::Type::Path(tp) = &pt.bounded_ty else {
            continue;
        };
        let Some(d) = tp.path.get_ident() else {
            continue;
        };
        if !params.contains(&d) {
            continue;
        }
        if let Some(e) = pt.bounds.iter().find_map(dtype_of) {
            return Some((e, d.clone()));
        }
    }
    None
}

/// The dtype and device to check the fields against, when the struct says them unambiguously.
#[derive(Clone, Debug)]
pub enum FieldCheck {
    /// The struct's own dtype and device parameters (see [`dtype_device_params`]).
    Params(Ident, Ident),
    /// A struct with no type or lifetime parameters whose fields name exactly one dtype (`f32`
    /// or `f64`) and one device (`Cpu` or `Cuda`, as written) among their generic arguments.
    Concrete(Box<syn::Type>, Box<syn::Type>),
}

/// What the fields of `item` that are not skipped can be checked against, if anything: the
/// struct's dtype and device parameters when the generated `TensorCollection` impl is for them
/// (no skipped field), else, for a struct with no type or lifetime parameters, the one dtype and
/// the one device its fields' types name. `None` where that is ambiguous or absent: the fields
/// are then checked where the model is used, as before.
pub fn field_check(item: &syn::ItemStruct, skipped: &[bool]) -> Option<FieldCheck> {
    if let Some((e, d)) = dtype_device_params(&item.generics) {
        return (!skipped.iter().any(|s| *s)).then_some(FieldCheck::Params(e, d));
    }
    let generic = item
        .generics
        .params
        .iter()
        .any(|p| !matches!(p, syn::GenericParam::Const(_)));
    if generic {
        return None;
    }
    let mut dtypes: Vec<syn::Type> = Vec::new();
    let mut devices: Vec<syn::Type> = Vec::new();
    for (field, skip) in item.fields.iter().zip(skipped) {
        if !skip {
            named_dtypes_and_devices(&field.ty, &mut dtypes, &mut devices);
        }
    }
    let one = |mut found: Vec<syn::Type>| {
        let first = quote::ToTokens::to_token_stream(found.first()?).to_string();
        found
            .iter()
            .all(|t| quote::ToTokens::to_token_stream(t).to_string() == first)
            .then(|| found.swap_remove(0))
    };
    Some(FieldCheck::Concrete(
        Box::new(one(dtypes)?),
        Box::new(one(devices)?),
    ))
}

/// The dtypes (`f32`, `f64`) and devices (a path ending in `Cpu` or `Cuda`) among the generic
/// arguments of `ty`, at any depth.
fn named_dtypes_and_devices(
    ty: &syn::Type,
    dtypes: &mut Vec<syn::Type>,
    devices: &mut Vec<syn::Type>,
) {
    match ty {
        syn::Type::Path(p) if p.qself.is_none() => {
            for seg in &p.path.segments {
                let syn::PathArguments::AngleBracketed(args) = &seg.arguments else {
                    continue;
                };
                for arg in &args.args {
                    let syn::GenericArgument::Type(arg) = arg else {
                        continue;
                    };
                    if let syn::Type::Path(ap) = arg {
                        let last = ap.path.segments.last().map(|s| s.ident.to_string());
                        match last.as_deref() {
                            Some("f32" | "f64") if ap.path.segments.len() == 1 => {
                                dtypes.push(arg.clone())
                            }
                            Some("Cpu" | "Cuda") if ap.qself.is_none() => devices.push(arg.clone()),
                            _ => {}
                        }
                    }
                    named_dtypes_and_devices(arg, dtypes, devices);
                }
            }
        }
        syn::Type::Tuple(t) => {
            for elem in &t.elems {
                named_dtypes_and_devices(elem, dtypes, devices);
            }
        }
        syn::Type::Paren(p) => named_dtypes_and_devices(&p.elem, dtypes, devices),
        syn::Type::Group(g) => named_dtypes_and_devices(&g.elem, dtypes, devices),
        syn::Type::Array(a) => named_dtypes_and_devices(&a.elem, dtypes, devices),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(item: &str) -> Option<(String, String)> {
        let item: syn::ItemStruct = syn::parse_str(item).unwrap();
        dtype_device_params(&item.generics).map(|(e, d)| (e.to_string(), d.to_string()))
    }

    fn check(item: &str, skipped: &[bool]) -> Option<String> {
        let item: syn::ItemStruct = syn::parse_str(item).unwrap();
        field_check(&item, skipped).map(|c| match c {
            FieldCheck::Params(e, d) => format!("params {e} {d}"),
            FieldCheck::Concrete(e, d) => {
                let (e, d) = (quote::quote!(#e), quote::quote!(#d));
                format!("{e} {d}")
            }
        })
    }

    #[test]
    fn the_dtype_and_device_to_check_fields_against() {
        // A struct generic over its dtype and device: its own, unless a field is skipped (the
        // generated impl is then for every dtype and device its fields allow).
        let generic = "struct F<E: Dtype, D: Device<E>> { l: L<E, D>, c: C }";
        assert_eq!(
            check(generic, &[false, false]).as_deref(),
            Some("params E D")
        );
        assert_eq!(check(generic, &[false, true]), None);
        // A concrete struct: the one dtype and device its fields name, at any depth, skipped
        // fields aside; const parameters are fine.
        assert_eq!(
            check(
                "struct F<const W: usize> { l: (Linear<2, W, f64, Cpu>, Tanh), c: Config, s: S<f32> }",
                &[false, false, true]
            )
            .as_deref(),
            Some("f64 Cpu")
        );
        // Ambiguous or absent: no check.
        assert_eq!(
            check(
                "struct F { a: L<f64, Cpu>, b: L<f32, Cpu> }",
                &[false, false]
            ),
            None
        );
        assert_eq!(
            check(
                "struct F { a: L<f64, Cpu>, b: L<f64, dfdx::Cpu> }",
                &[false, false]
            ),
            None
        );
        assert_eq!(
            check("struct F { a: Tanh, c: Config }", &[false, false]),
            None
        );
        assert_eq!(check("struct F;", &[]), None);
        // Type parameters other than the dtype and device: the fields' bounds are the user's.
        assert_eq!(check("struct F<A> { a: L<A, f64, Cpu> }", &[false]), None);
    }

    #[test]
    fn dtype_and_device_parameters_are_recognised() {
        let ed = Some(("E".to_string(), "D".to_string()));
        assert_eq!(
            params("struct F<E: Dtype, D: Device<E>> { l: L<E, D> }"),
            ed
        );
        assert_eq!(
            params("struct F<E: Dtype, D: dfdx::prelude::Storage<E>> { l: L<E, D> }"),
            ed
        );
        assert_eq!(
            params("struct F<E, D> where D: Device<E> { l: L<E, D> }"),
            ed
        );
        assert_eq!(
            params("struct F<X: Dtype, Y: Device<X>> { l: L<X, Y> }"),
            Some(("X".to_string(), "Y".to_string()))
        );
        // Concrete structs, a device bound on a type that is not a parameter, and this crate's
        // stronger `Device` (which `To` could not assume of another device) are not.
        assert_eq!(params("struct F { l: L<f64, Cpu> }"), None);
        assert_eq!(params("struct F<D: Device<f64>> { l: L<f64, D> }"), None);
        assert_eq!(
            params("struct F<E: Real, D: neural_ode::Device<E>> { l: L<E, D> }"),
            None
        );
    }
}
