//! Helpers shared by the examples: flags, fonts for plots, byte formatting.
#![allow(dead_code)]

use std::collections::HashMap;

/// `--key value` flags and bare `--switch`es.
pub struct Args {
    values: HashMap<String, String>,
    switches: Vec<String>,
}

impl Args {
    /// Parses `std::env::args()`; `known` lists the flags that take a value.
    pub fn parse(known: &[&str], usage: &str) -> Args {
        let mut values = HashMap::new();
        let mut switches = Vec::new();
        let mut it = std::env::args().skip(1);
        while let Some(arg) = it.next() {
            if arg == "--help" || arg == "-h" {
                println!("{usage}");
                std::process::exit(0);
            }
            let Some(key) = arg.strip_prefix("--") else {
                eprintln!("unexpected argument `{arg}`\n\n{usage}");
                std::process::exit(2);
            };
            if known.contains(&key) {
                match it.next() {
                    Some(v) => {
                        values.insert(key.to_string(), v);
                    }
                    None => {
                        eprintln!("`--{key}` needs a value\n\n{usage}");
                        std::process::exit(2);
                    }
                }
            } else {
                switches.push(key.to_string());
            }
        }
        Args { values, switches }
    }

    /// The value of `--key`, parsed, or `default`.
    pub fn get<T: std::str::FromStr>(&self, key: &str, default: T) -> T
    where
        T::Err: std::fmt::Display,
    {
        match self.values.get(key) {
            None => default,
            Some(v) => v.parse().unwrap_or_else(|e| {
                eprintln!("bad value `{v}` for `--{key}`: {e}");
                std::process::exit(2);
            }),
        }
    }

    /// Whether `--key` was given.
    pub fn flag(&self, key: &str) -> bool {
        self.switches.iter().any(|s| s == key)
    }
}

/// Registers a system TrueType font for plot labels (pure-Rust rendering, no system library).
/// Returns false when none is found; plots are then drawn without text.
pub fn register_font() -> bool {
    const CANDIDATES: &[&str] = &[
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/TTF/DejaVuSans.ttf",
        "/usr/share/fonts/dejavu/DejaVuSans.ttf",
        "/Library/Fonts/Arial.ttf",
        "C:\\Windows\\Fonts\\arial.ttf",
    ];
    for path in CANDIDATES {
        if let Ok(bytes) = std::fs::read(path) {
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if plotters::style::register_font(
                "sans-serif",
                plotters::style::FontStyle::Normal,
                bytes,
            )
            .is_ok()
            {
                return true;
            }
        }
    }
    false
}

/// `1.5 MiB`-style sizes.
pub fn bytes(n: usize) -> String {
    let n = n as f64;
    if n >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", n / 1024.0 / 1024.0)
    } else if n >= 1024.0 {
        format!("{:.1} KiB", n / 1024.0)
    } else {
        format!("{n} B")
    }
}
