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

#[cfg(test)]
mod tests {
    use super::*;

    fn params(item: &str) -> Option<(String, String)> {
        let item: syn::ItemStruct = syn::parse_str(item).unwrap();
        dtype_device_params(&item.generics).map(|(e, d)| (e.to_string(), d.to_string()))
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
