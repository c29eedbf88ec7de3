//! The first check: the tableau's shape. One node per stage starting at 0, a name that is an
//! identifier, `a` strictly lower triangular (an explicit method) with one row per stage, and
//! weight vectors of the right length. The later checks index by stage, so a problem here stops
//! the validation.

use crate::internals::rational::Coef;
use crate::internals::tableau::Tableau;

use super::common::entries;

/// Checks the shape of `t`, adding every problem to `problems`. Returns `a` as an `s`-row
/// lower-triangular matrix (row `i` has `i` entries) when the shape is right and no problem was
/// found.
pub fn check(t: &Tableau, problems: &mut Vec<String>) -> Option<Vec<Vec<Coef>>> {
    let s = t.c.len();
    if s == 0 {
        problems.push("`c` is empty, expected one node per stage".into());
        return None;
    }
    if !t.c[0].is_zero() {
        problems.push(format!("`c[0]` is {}, expected 0 (the first stage of an explicit method is at the step's start)", t.c[0].value));
    }
    if t.name.is_empty()
        || !t
            .name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
    {
        problems.push(format!(
            "`name` is `{}`, expected an identifier of letters, digits and `_`",
            t.name
        ));
    }

    // Shape and explicitness of `a`.
    if t.a.len() != s {
        // Per-row checks would be misaligned; report the count alone.
        let rows = if t.a.len() == 1 { "row" } else { "rows" };
        problems.push(format!("`a` has {} {rows}, expected {s}: one per entry of `c`, starting with `[]` for the first stage", t.a.len()));
        return None;
    }
    let mut a: Vec<Vec<Coef>> = Vec::with_capacity(s);
    for (i, row) in t.a.iter().enumerate() {
        if row.len() == i {
            a.push(row.clone());
        } else if row.len() > i && row.len() <= s {
            // A row of the full square matrix: say whether it is implicit; either way the schema
            // asks for the strictly lower part only.
            let mut explicit = true;
            for (j, coef) in row.iter().enumerate().skip(i) {
                if !coef.is_zero() {
                    explicit = false;
                    problems.push(format!(
                        "the method is not explicit: `a[{i}][{j}]` is {}, expected 0 (only entries below the diagonal may be nonzero)",
                        coef.value
                    ));
                }
            }
            if explicit {
                let below = match i {
                    0 => "the first row is `[]`: nothing lies below the diagonal".to_string(),
                    1 => "row 1 holds only `a[1][0]`, the entry below the diagonal; drop the trailing zeros".to_string(),
                    _ => format!("row {i} holds only the entries below the diagonal, `a[{i}][0]` … `a[{i}][{}]`; drop the trailing zeros", i - 1),
                };
                problems.push(format!(
                    "`a[{i}]` has {} {}, expected {i}: {below}",
                    row.len(),
                    entries(row.len()),
                ));
            }
        } else {
            problems.push(format!(
                "`a[{i}]` has {} {}, expected {i}",
                row.len(),
                entries(row.len())
            ));
        }
    }
    if t.b.len() != s {
        problems.push(format!(
            "`b` has {} {}, expected {s}",
            t.b.len(),
            entries(t.b.len())
        ));
    }
    match (&t.b_hat, t.embedded_order) {
        (Some(bh), _) if bh.len() != s => problems.push(format!(
            "`b_hat` has {} {}, expected {s}",
            bh.len(),
            entries(bh.len())
        )),
        (Some(_), None) => problems.push("`b_hat` is given but `embedded_order` is missing".into()),
        (None, Some(_)) => problems.push("`embedded_order` is given but `b_hat` is missing".into()),
        _ => {}
    }
    problems.is_empty().then_some(a)
}
