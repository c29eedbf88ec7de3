//! Fuzzing the tableau pipeline (compiled for tests only): thousands of random mutations of
//! every shipped tableau and of the seed corpus (`macros/tests-corpus/`, plus the compile-fail
//! cases' files in `tests/ui/data/`) go through the whole expansion, from the file to the
//! generated code. Nothing may panic; every input ends in a spanned error or a valid method.
//!
//! `NEURAL_ODE_FUZZ_CASES` sets the number of mutated inputs (default 3000, what CI runs);
//! `NEURAL_ODE_FUZZ_SEED` the seed. A failure prints the seed, the case and the input.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use quote::quote;

use crate::internals::shipped::{self, text as shipped_text, SHIPPED};

/// xorshift64*: deterministic, dependency-free, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Values a mutation may put where a value was: wrong types, odd coefficients, odd numbers.
const VALUES: &[&str] = &[
    "\"0\"",
    "\"1\"",
    "\"-1/3\"",
    "\"1/0\"",
    "\"0/0\"",
    "\"-0\"",
    "\"1/-3\"",
    "\"+1\"",
    "\"1e5\"",
    "\".5\"",
    "\"5.\"",
    "\"0.1666666666666666666666666666666666666666667\"",
    "\"99999999999999999999999999999999999999/7\"",
    "\"\"",
    "\" 1/2 \"",
    "\"½\"",
    "\"١/٢\"",
    "\"1/2/3\"",
    "\"--1\"",
    "\"0x10\"",
    "\"NaN\"",
    "\"inf\"",
    "0.5",
    "1",
    "-1",
    "0",
    "65",
    "4294967297",
    "9223372036854775807",
    "-9223372036854775808",
    "1e308",
    "nan",
    "inf",
    "true",
    "[]",
    "[[]]",
    "[\"1\", [\"2\"]]",
    "{ x = 1 }",
    "\"dopri5\"",
    "\"a\u{0}b\"",
    "\"\u{202e}1/2\"",
    "\"🦀\"",
    "1979-05-27T07:32:00Z",
];

/// Strings a mutation may insert anywhere.
const INSERTS: &[&str] = &[
    "\u{feff}",
    "\u{0}",
    "é",
    "\u{301}",
    "🦀",
    "\u{202e}",
    "\"",
    "[",
    "]",
    "{",
    "}",
    "=",
    ",",
    "#",
    "\n",
    "\\",
    "'''",
    "\"\"\"",
    "a = []\n",
    "name = \"x\"\n",
    "order = 99\n",
    "b_hat = []\n",
    "[table]\n",
    "[[a]]\n",
    "c = [\"0\"]\n",
];

fn char_boundary(text: &str, mut i: usize) -> usize {
    i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// One to three random edits of `text`.
fn mutate(rng: &mut Rng, text: &str) -> String {
    let mut t = text.to_string();
    for _ in 0..=rng.below(3) {
        let lines: Vec<String> = t.lines().map(str::to_string).collect();
        t = match rng.below(9) {
            // Delete a line (a key, a row, a bracket).
            0 if !lines.is_empty() => {
                let k = rng.below(lines.len());
                let mut l = lines;
                l.remove(k);
                l.join("\n")
            }
            // Duplicate or swap lines.
            1 if !lines.is_empty() => {
                let (i, j) = (rng.below(lines.len()), rng.below(lines.len()));
                let mut l = lines;
                if rng.below(2) == 0 {
                    let line = l[i].clone();
                    l.insert(j, line);
                } else {
                    l.swap(i, j);
                }
                l.join("\n")
            }
            // Replace a quoted value with another value (or type).
            2 | 3 => {
                let quotes: Vec<usize> = t.match_indices('"').map(|(i, _)| i).collect();
                if quotes.len() >= 2 {
                    let k = rng.below(quotes.len() / 2) * 2;
                    let (a, b) = (quotes[k], quotes[(k + 1).min(quotes.len() - 1)]);
                    format!("{}{}{}", &t[..a], rng.pick(VALUES), &t[b + 1..])
                } else {
                    t
                }
            }
            // Replace a bare integer (order, embedded_order) with another value.
            4 => {
                let digits: Vec<usize> = t
                    .char_indices()
                    .filter(|&(i, c)| c.is_ascii_digit() && (i == 0 || t.as_bytes()[i - 1] == b' '))
                    .map(|(i, _)| i)
                    .collect();
                if digits.is_empty() {
                    t
                } else {
                    let i = *rng.pick(&digits);
                    let end = t[i..]
                        .find(|c: char| !c.is_ascii_digit())
                        .map_or(t.len(), |e| i + e);
                    format!("{}{}{}", &t[..i], rng.pick(VALUES), &t[end..])
                }
            }
            // Truncate.
            5 => {
                let i = char_boundary(&t, rng.below(t.len() + 1));
                t[..i].to_string()
            }
            // Insert something anywhere.
            6 | 7 => {
                let i = char_boundary(&t, rng.below(t.len() + 1));
                format!("{}{}{}", &t[..i], rng.pick(INSERTS), &t[i..])
            }
            // Flip one ASCII character.
            _ => {
                let i = char_boundary(&t, rng.below(t.len().max(1)));
                let mut bytes = t.clone().into_bytes();
                if let Some(b) = bytes.get_mut(i) {
                    if b.is_ascii() {
                        *b = b"0123456789/-.\"[],=ab_ "[rng.below(22)];
                    }
                }
                String::from_utf8(bytes).unwrap_or(t)
            }
        };
    }
    t
}

/// The seeds: every shipped tableau, the corpus files, the compile-fail cases' files.
fn seeds() -> Vec<(String, String)> {
    let mut seeds: Vec<(String, String)> = SHIPPED
        .iter()
        .map(|name| {
            (
                shipped::display(name),
                shipped_text(name).unwrap_or("").to_string(),
            )
        })
        .collect();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in [root.join("tests-corpus"), root.join("../tests/ui/data")] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        for f in files
            .into_iter()
            .filter(|f| f.extension().is_some_and(|e| e == "toml"))
        {
            let text = std::fs::read_to_string(&f).unwrap_or_default();
            seeds.push((f.display().to_string(), text));
        }
    }
    seeds
}

/// Runs one input through the whole expansion: `Ok(true)` for a valid method (code
/// generated), `Ok(false)` for a spanned error, `Err` for anything else.
fn expand_file(dir: &Path, text: &str) -> Result<bool, String> {
    let path = dir.join("case.toml");
    std::fs::write(&path, text).map_err(|e| e.to_string())?;
    let literal = path.display().to_string();
    let item = quote! {
        #[derive(Clone, Debug)]
        struct Field {
            l1: Linear<2, 2, f64, Cpu>,
        }
    };
    let out = crate::expand::expand(quote!(tableau = #literal), item).to_string();
    let valid = out.contains("impl __p :: RungeKutta for");
    let error = out.contains("compile_error");
    match (valid, error) {
        (true, false) => Ok(true),
        (false, true) => {
            // The message is spanned on the path literal and says which file it is about.
            if out.contains("in `") {
                Ok(false)
            } else {
                Err(format!("an error without the file's name: {out}"))
            }
        }
        _ => Err(format!("neither a method nor an error: {out}")),
    }
}

#[test]
fn mutated_tableaux_end_in_a_method_or_a_spanned_error() {
    let cases: usize = std::env::var("NEURAL_ODE_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000);
    let seed: u64 = std::env::var("NEURAL_ODE_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_0de5);
    let seeds = seeds();
    assert!(
        seeds.len() >= SHIPPED.len() + 20,
        "seed corpus: {} files",
        seeds.len()
    );
    let dir = std::env::temp_dir().join(format!("neural-ode-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let (mut valid, mut errors) = (0usize, 0usize);
    let start = std::time::Instant::now();
    // The seeds themselves first, then mutations of random seeds.
    for case in 0..seeds.len() + cases {
        let (origin, text) = if case < seeds.len() {
            (seeds[case].0.clone(), seeds[case].1.clone())
        } else {
            let (name, text) = rng.pick(&seeds);
            (name.clone(), mutate(&mut rng, text))
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| expand_file(&dir, &text)));
        match outcome {
            Ok(Ok(true)) => valid += 1,
            Ok(Ok(false)) => errors += 1,
            Ok(Err(why)) => {
                panic!("seed {seed}, case {case} (from {origin}): {why}\n--- input ---\n{text}")
            }
            Err(_) => {
                panic!("seed {seed}, case {case} (from {origin}) panicked\n--- input ---\n{text}")
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "fuzz: {} inputs ({} seeds + {cases} mutations, seed {seed}): {valid} valid methods, {errors} spanned errors, {:.1} s",
        seeds.len() + cases,
        seeds.len(),
        start.elapsed().as_secs_f64()
    );
    assert!(valid >= SHIPPED.len(), "the shipped tableaux are valid");
    assert!(errors > cases / 4, "mutations mostly break the file");
}
