//! Property tests of neural-ode over random explicit Butcher tableaux. `build.rs` draws the
//! tableaux (a fixed seed, so every build tests the same ones; `NEURAL_ODE_TABLEAU_SEED`
//! draws others), writes them as TOML files and generates one `#[neural_ode(tableau = …)]`
//! model per file; `tests/random_tableaux.rs` runs the properties on them. The tableaux thus
//! go through the real macro, not a copy of its pipeline.
