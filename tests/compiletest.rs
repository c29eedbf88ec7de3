//! Compile-fail cases for `#[neural_ode]`: one per kind of bad input, each with the exact
//! message it must produce (`tests/ui/*.stderr`). Regenerate with `TRYBUILD=overwrite` and
//! review every changed `.stderr` before committing.

#[test]
fn ui() {
    // Relative `tableau = "data/..."` paths in the cases resolve against tests/ui.
    std::env::set_var(
        "NEURAL_ODE_TABLEAU_DIR",
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ui"),
    );
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
