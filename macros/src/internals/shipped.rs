//! The shipped tableaux: their names and their text, compiled into this crate from its own
//! `tableaux/` directory (so the published crate carries them). A leaf: it imports nothing of
//! the crate.

/// The one list of shipped tableaux: their names and their text.
macro_rules! shipped {
    ($($name:literal),* $(,)?) => {
        /// The shipped tableaux, by name (the files in this crate's `tableaux/`).
        pub const SHIPPED: &[&str] = &[$($name),*];

        /// The text of a shipped tableau.
        pub fn text(name: &str) -> Option<&'static str> {
            match name {
                $($name => Some(include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tableaux/", $name, ".toml"))),)*
                _ => None,
            }
        }
    };
}

shipped!(
    "euler",
    "midpoint",
    "heun",
    "ralston",
    "rk4",
    "rk38",
    "heun_euler",
    "fehlberg2",
    "bosh3",
    "fehlberg45",
    "cash_karp",
    "dopri5",
    "tsit5",
    "dopri8",
);

/// The directory of the shipped tableau files, where this crate was built from.
pub const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tableaux");

/// Where a user finds a shipped tableau's file: its path in this crate's sources (in the
/// repository, `macros/tableaux/<name>.toml`; in a published build, under Cargo's registry).
pub fn display(name: &str) -> String {
    format!("{DIR}/{name}.toml")
}
