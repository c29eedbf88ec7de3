//! The front end: from the attribute and the struct to a validated, analysed method. Nothing
//! here knows about the generated code (it imports nothing from `codegen`), so it can be tested
//! and fuzzed alone.
//!
//! [`attr`] parses the attribute → [`load`] reads the tableau file (or a [`shipped`] one) →
//! [`tableau`] turns it into exact coefficients ([`rational`]) → [`validate`] checks it (the
//! rooted-tree order conditions of [`trees`]) → [`analysis`] works out, once, what the backward
//! step and the interpolant need of each stage. [`fields`] reads the model struct's fields.
//! [`names`] and [`shipped`] are leaves that messages and the loader share.

pub mod analysis;
pub mod attr;
pub mod fields;
pub mod load;
pub mod names;
pub mod rational;
pub mod shipped;
pub mod tableau;
pub mod trees;
pub mod validate;
