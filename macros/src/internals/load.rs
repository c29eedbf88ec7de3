//! Finding and reading a tableau file.

use std::path::PathBuf;

use super::attr::Source;
use super::shipped;

/// The text of a tableau and where it came from.
#[derive(Debug)]
pub struct Loaded {
    /// The path as the user should read it in messages (as written in the attribute, or
    /// [`shipped::display`] for shipped methods).
    pub display: String,
    /// The file to `include_bytes!` so Cargo rebuilds when it changes (user files only: shipped
    /// tableaux are compiled into this macro crate, which Cargo already tracks).
    pub track: Option<PathBuf>,
    pub text: String,
}

/// The environment variable that, when set, replaces `CARGO_MANIFEST_DIR` as the directory that
/// relative `tableau = "..."` paths are resolved against.
pub const DIR_OVERRIDE: &str = "NEURAL_ODE_TABLEAU_DIR";

/// Reads the tableau named by the attribute. I/O errors stop the expansion at once.
pub fn load(source: &Source) -> syn::Result<Loaded> {
    match source {
        Source::Shipped { name, .. } => {
            let text = shipped::text(name).ok_or_else(|| {
                syn::Error::new(source.span(), format!("unknown solver `{name}`"))
            })?;
            Ok(Loaded {
                display: shipped::display(name),
                track: None,
                text: text.to_string(),
            })
        }
        Source::File { path, .. } => {
            let rel = PathBuf::from(path);
            let full = if rel.is_absolute() {
                rel
            } else {
                let base = std::env::var_os(DIR_OVERRIDE)
                    .or_else(|| std::env::var_os("CARGO_MANIFEST_DIR"))
                    .map(PathBuf::from)
                    .unwrap_or_default();
                base.join(rel)
            };
            let text = std::fs::read_to_string(&full).map_err(|e| {
                let what = match e.kind() {
                    std::io::ErrorKind::NotFound => "not found".to_string(),
                    _ => e.to_string(),
                };
                syn::Error::new(
                    source.span(),
                    format!("cannot read tableau file `{path}`: {what} (relative paths are resolved against the directory of the crate's Cargo.toml, or against `{DIR_OVERRIDE}` when it is set)"),
                )
            })?;
            Ok(Loaded {
                display: path.clone(),
                track: Some(full),
                text,
            })
        }
    }
}
