//! placeholder
pub use neural_ode_macros::neural_ode;
pub use neural_ode_runtime::*;
pub use dfdx;
