//! Spelling help for messages: names in backticks, and the nearest known name to a typo. A leaf:
//! it imports nothing of the crate.

/// `` `a`, `b`, `c` ``.
pub fn backticked(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `" (did you mean `x`?)"` when a name is within edit distance 2 of the input.
pub fn did_you_mean(input: &str, names: &[&str]) -> String {
    names
        .iter()
        .map(|n| (edit_distance(input, n), *n))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, n)| format!(" (did you mean `{n}`?)"))
        .unwrap_or_default()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_nearest_name() {
        assert_eq!(
            did_you_mean("dopri7", &["rk4", "dopri5", "dopri8"]),
            " (did you mean `dopri5`?)"
        );
        assert_eq!(did_you_mean("xyzzy", &["rk4", "dopri5"]), "");
        assert_eq!(backticked(&["a", "b"]), "`a`, `b`");
    }
}
