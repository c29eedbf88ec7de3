//! The tableau IR: a TOML document turned into exact coefficients.

use super::names::did_you_mean;
use super::rational::{self, Coef};

/// An explicit Runge–Kutta method as read from its file (not yet validated).
#[derive(Clone, Debug)]
pub struct Tableau {
    pub name: String,
    pub title: String,
    pub reference: String,
    pub order: u32,
    pub embedded_order: Option<u32>,
    pub c: Vec<Coef>,
    /// Row `i` as written (validation checks it has `i` entries).
    pub a: Vec<Vec<Coef>>,
    pub b: Vec<Coef>,
    pub b_hat: Option<Vec<Coef>>,
    /// Absolute tolerance for the checks, when the published numbers are approximations.
    pub tolerance: Option<Coef>,
    /// The continuous extension (dense output), if the file gives one.
    pub dense: Option<Dense>,
}

/// A `[dense]` section: the continuous extension `y(t₀ + θh) = y₀ + h Σ bᵢ(θ) kᵢ`.
#[derive(Clone, Debug)]
pub struct Dense {
    /// Its order (validation checks the conditions hold, and that it is not higher).
    pub order: u32,
    /// Where the coefficients come from.
    pub reference: String,
    /// Row `i`: the coefficients of `θ, θ², …` in `bᵢ(θ)` (no constant term: `bᵢ(0) = 0`).
    pub b: Vec<Vec<Coef>>,
}

const DENSE_KEYS: &[&str] = &["order", "reference", "b"];

const KEYS: &[&str] = &[
    "name",
    "title",
    "reference",
    "order",
    "embedded_order",
    "c",
    "a",
    "b",
    "b_hat",
    "tolerance",
    "dense",
];

/// Parses a tableau document. Malformed TOML stops at once (`Err` with one message); problems
/// with individual keys are all collected (`Err` with every message).
pub fn parse(text: &str) -> Result<Tableau, Vec<String>> {
    let doc: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let at = e.span().map(|span| {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.chars().rev().take_while(|&c| c != '\n').count() + 1;
            format!(" at line {line}, column {column}")
        });
        vec![format!(
            "malformed TOML{}: {}",
            at.unwrap_or_default(),
            e.message().trim_end_matches('\n')
        )]
    })?;
    let mut problems = Vec::new();
    for key in doc.keys() {
        if !KEYS.contains(&key.as_str()) {
            let hint = did_you_mean(key, KEYS);
            problems.push(format!("unknown key `{key}`{hint}"));
        }
    }
    let name = string(&doc, "name", &mut problems);
    let title = string(&doc, "title", &mut problems);
    let reference = string(&doc, "reference", &mut problems);
    let order = integer(&doc, "order", true, &mut problems).unwrap_or(0);
    let embedded_order = integer(&doc, "embedded_order", false, &mut problems);
    let c = vector(&doc, "c", true, &mut problems).unwrap_or_default();
    let b = vector(&doc, "b", true, &mut problems).unwrap_or_default();
    let b_hat = vector(&doc, "b_hat", false, &mut problems);
    let tolerance = match doc.get("tolerance") {
        None => None,
        Some(v) => coefs(std::slice::from_ref(v), "tolerance", &mut problems).pop(),
    };
    let dense = match doc.get("dense") {
        None => None,
        Some(toml::Value::Table(table)) => dense(table, &mut problems),
        Some(other) => {
            problems.push(format!(
                "`dense` is a {}, expected a table (a `[dense]` section)",
                other.type_str()
            ));
            None
        }
    };
    let a = match doc.get("a") {
        None => {
            problems.push("missing key `a`".into());
            Vec::new()
        }
        Some(toml::Value::Array(rows)) => rows
            .iter()
            .enumerate()
            .map(|(i, row)| match row {
                toml::Value::Array(items) => coefs(items, &format!("a[{i}]"), &mut problems),
                other => {
                    problems.push(format!(
                        "`a[{i}]` is a {}, expected an array of coefficient strings",
                        other.type_str()
                    ));
                    Vec::new()
                }
            })
            .collect(),
        Some(other) => {
            problems.push(format!(
                "`a` is a {}, expected an array of rows",
                other.type_str()
            ));
            Vec::new()
        }
    };
    if problems.is_empty() {
        Ok(Tableau {
            name,
            title,
            reference,
            order,
            embedded_order,
            c,
            a,
            b,
            b_hat,
            tolerance,
            dense,
        })
    } else {
        Err(problems)
    }
}

/// Parses a `[dense]` section.
fn dense(table: &toml::Table, problems: &mut Vec<String>) -> Option<Dense> {
    let before = problems.len();
    for key in table.keys() {
        if !DENSE_KEYS.contains(&key.as_str()) {
            let hint = did_you_mean(key, DENSE_KEYS);
            problems.push(format!("unknown key `dense.{key}`{hint}"));
        }
    }
    let order = match table.get("order") {
        Some(toml::Value::Integer(n)) if (1..=64).contains(n) => *n as u32,
        Some(other) => {
            problems.push(format!(
                "`dense.order` is {other}, expected a positive integer"
            ));
            0
        }
        None => {
            problems.push("missing key `dense.order`".into());
            0
        }
    };
    let reference = match table.get("reference") {
        Some(toml::Value::String(s)) => s.clone(),
        Some(other) => {
            problems.push(format!(
                "`dense.reference` is a {}, expected a string",
                other.type_str()
            ));
            String::new()
        }
        None => {
            problems.push(
                "missing key `dense.reference` (cite where the coefficients come from)".into(),
            );
            String::new()
        }
    };
    let b = match table.get("b") {
        Some(toml::Value::Array(rows)) => rows
            .iter()
            .enumerate()
            .map(|(i, row)| match row {
                toml::Value::Array(items) => coefs(items, &format!("dense.b[{i}]"), problems),
                other => {
                    problems.push(format!(
                        "`dense.b[{i}]` is a {}, expected an array of coefficient strings (of θ, θ², …)",
                        other.type_str()
                    ));
                    Vec::new()
                }
            })
            .collect(),
        Some(other) => {
            problems.push(format!("`dense.b` is a {}, expected an array of rows", other.type_str()));
            Vec::new()
        }
        None => {
            problems.push("missing key `dense.b`".into());
            Vec::new()
        }
    };
    (problems.len() == before).then_some(Dense {
        order,
        reference,
        b,
    })
}

fn string(doc: &toml::Table, key: &str, problems: &mut Vec<String>) -> String {
    match doc.get(key) {
        Some(toml::Value::String(s)) => s.clone(),
        Some(other) => {
            problems.push(format!(
                "`{key}` is a {}, expected a string",
                other.type_str()
            ));
            String::new()
        }
        None => {
            problems.push(format!("missing key `{key}`"));
            String::new()
        }
    }
}

fn integer(
    doc: &toml::Table,
    key: &str,
    required: bool,
    problems: &mut Vec<String>,
) -> Option<u32> {
    match doc.get(key) {
        Some(toml::Value::Integer(n)) if (1..=64).contains(n) => Some(*n as u32),
        Some(toml::Value::Integer(n)) => {
            problems.push(format!("`{key}` is {n}, expected a positive integer"));
            None
        }
        Some(other) => {
            problems.push(format!(
                "`{key}` is a {}, expected a positive integer",
                other.type_str()
            ));
            None
        }
        None => {
            if required {
                problems.push(format!("missing key `{key}`"));
            }
            None
        }
    }
}

fn vector(
    doc: &toml::Table,
    key: &str,
    required: bool,
    problems: &mut Vec<String>,
) -> Option<Vec<Coef>> {
    match doc.get(key) {
        Some(toml::Value::Array(items)) => Some(coefs(items, key, problems)),
        Some(other) => {
            problems.push(format!(
                "`{key}` is a {}, expected an array of coefficient strings",
                other.type_str()
            ));
            None
        }
        None => {
            if required {
                problems.push(format!("missing key `{key}`"));
            }
            None
        }
    }
}

fn coefs(items: &[toml::Value], key: &str, problems: &mut Vec<String>) -> Vec<Coef> {
    items
        .iter()
        .enumerate()
        .map(|(j, item)| {
            let at = format!("{key}[{j}]");
            match item {
                toml::Value::String(s) => rational::parse(s).unwrap_or_else(|msg| {
                    problems.push(format!("`{at}`: {msg}"));
                    zero()
                }),
                toml::Value::Float(x) => {
                    let hint = match nearby_fraction(*x) {
                        Some((p, q)) if q > 1 => format!("`\"{p}/{q}\"` (the fraction it rounds) or `\"{x}\"`"),
                        _ => format!("`\"{x}\"`, or the exact fraction it stands for"),
                    };
                    problems.push(format!(
                        "`{at}` is the TOML float {x}, which cannot hold most coefficients exactly; write it as a string: {hint}"
                    ));
                    zero()
                }
                toml::Value::Integer(n) => {
                    problems.push(format!("`{at}` is the TOML integer {n}; write coefficients as strings, e.g. `\"{n}\"`"));
                    zero()
                }
                other => {
                    problems.push(format!("`{at}` is a {}, expected a coefficient string like `\"44/45\"`", other.type_str()));
                    zero()
                }
            }
        })
        .collect()
}

/// The simplest fraction `p/q` (`q ≤ 10⁶`) that rounds to `x` within a few ulps, from the
/// continued-fraction expansion of `x`: the rational a float-written coefficient most likely
/// stands for (`0.16666666666666666` → `1/6`). `None` if there is none that small.
pub(crate) fn nearby_fraction(x: f64) -> Option<(i64, i64)> {
    if !x.is_finite() || x.abs() > 1e9 {
        return None;
    }
    let tolerance = 4.0 * f64::EPSILON * x.abs().max(f64::MIN_POSITIVE);
    // Convergents h/k of the continued fraction [a0; a1, a2, …] of |x|.
    let (mut h0, mut h1, mut k0, mut k1) = (0i64, 1i64, 1i64, 0i64);
    let mut r = x.abs();
    for _ in 0..64 {
        let a = r.floor();
        if a > 1e12 {
            return None;
        }
        let a = a as i64;
        let (h2, k2) = (
            a.checked_mul(h1)?.checked_add(h0)?,
            a.checked_mul(k1)?.checked_add(k0)?,
        );
        if k2 > 1_000_000 {
            return None;
        }
        (h0, h1, k0, k1) = (h1, h2, k1, k2);
        if (h1 as f64 / k1 as f64 - x.abs()).abs() <= tolerance {
            return Some((if x < 0.0 { -h1 } else { h1 }, k1));
        }
        let frac = r - r.floor();
        if frac == 0.0 {
            return None;
        }
        r = 1.0 / frac;
    }
    None
}

fn zero() -> Coef {
    Coef {
        value: num_traits::Zero::zero(),
        decimal: false,
        text: "0".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::nearby_fraction;

    #[test]
    fn floats_map_to_the_fractions_they_round() {
        assert_eq!(nearby_fraction(1.0 / 6.0), Some((1, 6)));
        assert_eq!(nearby_fraction(0.5), Some((1, 2)));
        assert_eq!(nearby_fraction(-2.0 / 3.0), Some((-2, 3)));
        assert_eq!(nearby_fraction(44.0 / 45.0), Some((44, 45)));
        assert_eq!(nearby_fraction(-56.0 / 15.0), Some((-56, 15)));
        assert_eq!(nearby_fraction(3.0), Some((3, 1)));
        assert_eq!(nearby_fraction(0.0), Some((0, 1)));
        // Printed decimals of a number with no small fraction: none.
        assert_eq!(nearby_fraction(std::f64::consts::PI), None);
        assert_eq!(nearby_fraction(0.161), Some((161, 1000)));
        assert_eq!(nearby_fraction(f64::NAN), None);
    }
}
