//! Parsing `#[neural_ode(solver = "...", tableau = "...", grad = "...")]`.

use proc_macro2::{Span, TokenStream};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Expr, ExprLit, Lit, LitStr, MetaNameValue, Token};

use super::names::{backticked, did_you_mean};
use super::shipped::SHIPPED;

/// Where the tableau comes from.
#[derive(Clone, Debug)]
pub enum Source {
    /// A shipped tableau; the literal (for spans), or `None` for the default `dopri5`.
    Shipped { name: String, lit: Option<LitStr> },
    /// A user's file, relative to the crate's manifest directory.
    File { path: String, lit: LitStr },
}

impl Source {
    /// The span that file and tableau errors point at.
    pub fn span(&self) -> Span {
        match self {
            Source::Shipped { lit: Some(lit), .. } | Source::File { lit, .. } => lit.span(),
            Source::Shipped { lit: None, .. } => Span::call_site(),
        }
    }
}

/// The gradient method named in the attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grad {
    Symplectic,
    Aca,
    Backprop,
    Adjoint,
    Reversible,
}

impl Grad {
    pub const NAMES: [(&'static str, Grad); 5] = [
        ("symplectic", Grad::Symplectic),
        ("aca", Grad::Aca),
        ("backprop", Grad::Backprop),
        ("adjoint", Grad::Adjoint),
        ("reversible", Grad::Reversible),
    ];

    /// Old spellings still accepted (not listed in messages).
    pub const ALIASES: &'static [(&'static str, Grad)] = &[("checkpoint", Grad::Aca)];

    /// The runtime's enum variant name.
    pub fn variant(self) -> &'static str {
        match self {
            Grad::Symplectic => "Symplectic",
            Grad::Aca => "Aca",
            Grad::Backprop => "Backprop",
            Grad::Adjoint => "Adjoint",
            Grad::Reversible => "Reversible",
        }
    }
}

/// The parsed attribute.
#[derive(Clone, Debug)]
pub struct Attr {
    pub source: Source,
    pub grad: Grad,
}

/// Parses the attribute's arguments. Stops at the first error: these are syntax errors.
pub fn parse(args: TokenStream) -> syn::Result<Attr> {
    let pairs = Punctuated::<MetaNameValue, Token![,]>::parse_terminated.parse2(args)?;
    let mut solver: Option<LitStr> = None;
    let mut tableau: Option<LitStr> = None;
    let mut grad: Option<(LitStr, Grad)> = None;
    for pair in pairs {
        let key = pair
            .path
            .get_ident()
            .map(|i| i.to_string())
            .unwrap_or_else(|| quote::ToTokens::to_token_stream(&pair.path).to_string());
        let lit = string_value(&pair.value, &key)?;
        let slot = match key.as_str() {
            "solver" => &mut solver,
            "tableau" => &mut tableau,
            "grad" => {
                if grad.is_some() {
                    return Err(syn::Error::new_spanned(&pair.path, "duplicate key `grad`"));
                }
                let value = lit.value();
                let method = Grad::NAMES
                    .iter()
                    .chain(Grad::ALIASES)
                    .find(|(n, _)| *n == value)
                    .map(|(_, g)| *g)
                    .ok_or_else(|| {
                        let names: Vec<&str> = Grad::NAMES.iter().map(|(n, _)| *n).collect();
                        syn::Error::new(
                            lit.span(),
                            format!(
                                "unknown gradient method `{value}`{}; expected one of {}",
                                did_you_mean(&value, &names),
                                backticked(&names)
                            ),
                        )
                    })?;
                grad = Some((lit, method));
                continue;
            }
            _ => {
                return Err(syn::Error::new_spanned(
                    &pair.path,
                    format!(
                    "unknown key `{key}` in #[neural_ode], expected `solver`, `tableau` or `grad`"
                ),
                ))
            }
        };
        if slot.is_some() {
            return Err(syn::Error::new_spanned(
                &pair.path,
                format!("duplicate key `{key}`"),
            ));
        }
        *slot = Some(lit);
    }
    let source = match (solver, tableau) {
        (Some(_), Some(t)) => {
            return Err(syn::Error::new(
                t.span(),
                "`solver` and `tableau` both given; name a shipped method with `solver` or a file with `tableau`, not both",
            ))
        }
        (Some(lit), None) => {
            let name = lit.value();
            if !SHIPPED.contains(&name.as_str()) {
                return Err(syn::Error::new(
                    lit.span(),
                    format!(
                        "unknown solver `{name}`{}; expected one of {}, or `tableau = \"path.toml\"` for a file of your own",
                        did_you_mean(&name, SHIPPED),
                        backticked(SHIPPED)
                    ),
                ));
            }
            Source::Shipped { name, lit: Some(lit) }
        }
        (None, Some(lit)) => Source::File { path: lit.value(), lit },
        (None, None) => Source::Shipped { name: "dopri5".into(), lit: None },
    };
    Ok(Attr {
        source,
        grad: grad.map(|(_, g)| g).unwrap_or(Grad::Symplectic),
    })
}

fn string_value(value: &Expr, key: &str) -> syn::Result<LitStr> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Ok(s.clone()),
        // A literal passed through a `macro_rules!` fragment arrives in an invisible group.
        Expr::Group(g) => string_value(&g.expr, key),
        other => Err(syn::Error::new_spanned(
            other,
            format!("`{key}` expects a string literal, e.g. `{key} = \"...\"`"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    #[test]
    fn defaults_and_keys() {
        let a = parse(quote!()).unwrap();
        assert!(matches!(a.source, Source::Shipped { ref name, .. } if name == "dopri5"));
        assert_eq!(a.grad, Grad::Symplectic);
        let a = parse(quote!(solver = "rk4", grad = "backprop")).unwrap();
        assert!(matches!(a.source, Source::Shipped { ref name, .. } if name == "rk4"));
        assert_eq!(a.grad, Grad::Backprop);
        // ACA's old name stays an alias.
        assert_eq!(parse(quote!(grad = "checkpoint")).unwrap().grad, Grad::Aca);
        assert_eq!(parse(quote!(grad = "aca")).unwrap().grad, Grad::Aca);
        let a = parse(quote!(tableau = "my.toml")).unwrap();
        assert!(matches!(a.source, Source::File { ref path, .. } if path == "my.toml"));
    }

    #[test]
    fn errors() {
        let msg = |t| parse(t).unwrap_err().to_string();
        assert_eq!(
            msg(quote!(grad = "symplectc")),
            "unknown gradient method `symplectc` (did you mean `symplectic`?); expected one of `symplectic`, `aca`, `backprop`, `adjoint`, `reversible`"
        );
        assert!(msg(quote!(solver = "dopri7")).starts_with("unknown solver `dopri7`"));
        assert!(msg(quote!(solver = "dopri7")).starts_with(
            "unknown solver `dopri7` (did you mean `dopri5`?); expected one of `euler`"
        ));
        assert_eq!(
            msg(quote!(order = "5")),
            "unknown key `order` in #[neural_ode], expected `solver`, `tableau` or `grad`"
        );
        assert_eq!(
            msg(quote!(solver = "rk4", solver = "euler")),
            "duplicate key `solver`"
        );
        assert_eq!(
            msg(quote!(solver = 5)),
            "`solver` expects a string literal, e.g. `solver = \"...\"`"
        );
        assert!(msg(quote!(solver = "rk4", tableau = "x.toml"))
            .starts_with("`solver` and `tableau` both given"));
    }
}
