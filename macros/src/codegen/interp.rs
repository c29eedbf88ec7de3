//! Dense output: the interpolant a method uses between its step boundaries, and the generated
//! code that evaluates it (`interpolant_weights`, `interpolate`) and differentiates it
//! (`adjoint_step_dense`, the stage sweep with the outputs' cotangents folded in).
//!
//! A tableau's `[dense]` section gives the interpolant over the step's own stages (for a method
//! that is not FSAL, optionally one more: `f(t + h, y)`, as below). Without one,
//! the method gets the cubic Hermite interpolant through the step's endpoints and their
//! derivatives, written over the same stages: with `y = x + h Σ bᵢ kᵢ`,
//! `y(θ) = x + h [h₀₁(θ) Σ bᵢ kᵢ + h₁₀(θ) k₁ + h₁₁(θ) f(t + h, y)]` with
//! `h₀₁ = 3θ² − 2θ³`, `h₁₀ = θ − 2θ² + θ³`, `h₁₁ = θ³ − θ²`. For an FSAL method `f(t + h, y)`
//! is the last stage; otherwise it is one extra stage (row `b`, node 1), which the runtime hands
//! on as the next step's first evaluation.

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{One, Zero};
use proc_macro2::{Literal, TokenStream};
use quote::quote;

use super::adjoint::{adjoint_bounds, kept_stages, stored_states, sweep, Stages, SweepKind};
use super::{float, k};
use crate::internals::validate::Method;

/// The interpolant `y(t + θh) = x + h Σᵢ bᵢ(θ) kᵢ` over `rows.len()` stages.
pub struct Interpolant {
    /// Row `i`: the coefficients of `θ, θ², …` in `bᵢ(θ)`.
    pub rows: Vec<Vec<BigRational>>,
    /// Its order.
    pub order: u32,
    /// The cubic Hermite fallback (no `[dense]` section).
    pub hermite: bool,
}

fn q(n: i64) -> BigRational {
    BigRational::from_integer(BigInt::from(n))
}

/// The interpolant of `m`: its `[dense]` section, else cubic Hermite (one extra stage unless
/// the method is FSAL).
pub fn interpolant(m: &Method) -> Interpolant {
    if let Some(d) = &m.t.dense {
        let mut rows: Vec<Vec<BigRational>> =
            d.b.iter()
                .map(|row| row.iter().map(|c| c.value.clone()).collect())
                .collect();
        // One row per stage, or one more for the extra stage f(t + h, y) (validated).
        let len = rows.len().max(m.s);
        rows.resize(len, Vec::new());
        return Interpolant {
            rows,
            order: d.order,
            hermite: false,
        };
    }
    let stages = if m.fsal { m.s } else { m.s + 1 };
    let mut rows = vec![vec![BigRational::zero(); 3]; stages];
    // h₀₁(θ) bᵢ = bᵢ (3θ² − 2θ³)
    for (row, b) in rows.iter_mut().zip(&m.t.b) {
        row[1] += &b.value * q(3);
        row[2] -= &b.value * q(2);
    }
    // h₁₀(θ) k₁ = (θ − 2θ² + θ³) k₁
    rows[0][0] += q(1);
    rows[0][1] -= q(2);
    rows[0][2] += q(1);
    // h₁₁(θ) f(t + h, y) = (θ³ − θ²) f(t + h, y)
    let last = stages - 1;
    rows[last][1] -= q(1);
    rows[last][2] += q(1);
    for row in &mut rows {
        while row.last().is_some_and(Zero::is_zero) {
            row.pop();
        }
    }
    Interpolant {
        rows,
        order: m.t.order.min(3),
        hermite: true,
    }
}

/// The stages of the dense backward sweep: the method's, plus the extra stage `f(t + h, y)` where
/// the interpolant uses one (Hermite without FSAL, or a `[dense]` section's extra row), with
/// output terms on every stage whose `bᵢ(θ)` is not identically zero.
fn dense_stages(m: &Method, p: &Interpolant) -> Stages {
    let mut sys = Stages::of(m);
    if p.rows.len() > m.s {
        // The extra stage f(t + h, y): row b, node 1.
        let b = sys.b.clone();
        sys.a.push(b);
        sys.b.push(BigRational::zero());
        sys.c.push(BigRational::one());
        sys.s += 1;
    }
    sys.dense = p
        .rows
        .iter()
        .map(|row| row.iter().any(|c| !c.is_zero()))
        .collect();
    sys
}

/// `θ · (c₁ + θ · (c₂ + …))` by Horner's rule, zero coefficients omitted; `None` when all are
/// zero.
fn horner(row: &[BigRational]) -> Option<TokenStream> {
    let mut inner: Option<TokenStream> = None;
    for c in row.iter().rev() {
        let lit = (!c.is_zero()).then(|| {
            let v = float(c);
            quote!(::neural_ode::__private::lit::<E>(#v))
        });
        inner = match (lit, inner) {
            (None, None) => None,
            (Some(l), None) => Some(l),
            (None, Some(e)) => Some(quote!(theta * (#e))),
            (Some(l), Some(e)) => Some(quote!(#l + theta * (#e))),
        };
    }
    inner.map(|e| quote!(theta * (#e)))
}

/// The interpolant's constants for the `RungeKutta` impl.
pub fn constants(p: &Interpolant) -> TokenStream {
    let stages = Literal::usize_unsuffixed(p.rows.len());
    let order = Literal::u32_unsuffixed(p.order);
    let hermite = p.hermite;
    let rows: Vec<TokenStream> = p
        .rows
        .iter()
        .map(|row| {
            let items: Vec<TokenStream> = row.iter().map(float).collect();
            quote!(&[#(#items),*])
        })
        .collect();
    quote! {
        const INTERPOLANT_STAGES: usize = #stages;
        const INTERPOLANT: &'static [&'static [f64]] = &[#(#rows),*];
        const INTERPOLANT_ORDER: u32 = #order;
        const HERMITE: bool = #hermite;
    }
}

/// The bodies of `interpolant_weights`, `interpolate` and `adjoint_step_dense` for method `m` and
/// its interpolant `p` (from [`interpolant`]).
pub fn methods(m: &Method, p: &Interpolant) -> TokenStream {
    let weights: Vec<TokenStream> = p
        .rows
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let i = Literal::usize_unsuffixed(i);
            match horner(row) {
                Some(e) => quote!(w[#i] = #e;),
                None => quote!(w[#i] = <E as ::neural_ode::__private::Zero>::zero();),
            }
        })
        .collect();
    // `interpolate`: x + h Σ bᵢ(θ) kᵢ over the stages whose polynomial is not zero.
    let mut names = Vec::new();
    let mut terms = Vec::new();
    for (i, row) in p.rows.iter().enumerate() {
        if row.iter().all(Zero::is_zero) {
            continue;
        }
        let ki = k(i);
        let idx = Literal::usize_unsuffixed(i);
        names.push(quote!(let #ki = &ks[#idx];));
        terms.push(quote!((h * w[#idx], #ki)));
    }
    let n = Literal::usize_unsuffixed(p.rows.len());
    let p_ = quote!(::neural_ode::__private);
    let bounds = adjoint_bounds();
    let sys = dense_stages(m, p);
    let body = sweep(&sys, None, SweepKind::Dense);
    // With the stage store: the live stages' states are the step's input, the stored stages and
    // the step's result (the stage only the interpolant reads is the FSAL stage or the Hermite
    // fallback's extra one, both at `y`). Where some live stage is none of these (a `[dense]`
    // section reading a stage the step itself does not need, on a method that is not FSAL), the
    // trait's default rebuilds instead.
    let y_stage = if p.rows.len() > m.s {
        Some(m.s)
    } else {
        m.fsal.then(|| m.s - 1)
    };
    let stored = stored_states(&sys, &kept_stages(m), y_stage).map(|sources| {
        let body = sweep(&sys, Some(&sources), SweepKind::Dense);
        quote! {
            #[allow(clippy::too_many_lines, clippy::many_single_char_names, clippy::too_many_arguments, unused_variables)]
            fn adjoint_step_dense_stored<S, E, D, F, V, Er>(
                f: &F,
                t: E,
                h: E,
                x: &#p_::Tensor<S, E, D>,
                stages: &[#p_::Tensor<S, E, D>],
                y: &#p_::Tensor<S, E, D>,
                y_bar: &#p_::Tensor<S, E, D>,
                dense: &[#p_::Tensor<S, E, D>],
                vjp: &mut V,
                ws: &mut #p_::Workspace<S, E, D>,
            ) -> ::core::result::Result<#p_::AdjointStep<S, E, D>, Er>
            #bounds
            {
                let evals = 0usize;
                #body
            }
        }
    });
    let evals_decl = if sys.needs_k().iter().any(|&n| n) {
        quote!(let mut evals = 0usize;)
    } else {
        quote!(let evals = 0usize;)
    };
    quote! {
        #[allow(clippy::many_single_char_names)]
        fn interpolant_weights<E: #p_::Real>(theta: E, w: &mut [E]) {
            #(#weights)*
        }

        #[allow(clippy::many_single_char_names)]
        fn interpolate<S, E, D>(
            h: E,
            x: &#p_::Tensor<S, E, D>,
            ks: &[#p_::Tensor<S, E, D>],
            theta: E,
        ) -> #p_::Tensor<S, E, D>
        where
            S: #p_::StateShape,
            E: #p_::Real,
            D: #p_::Backend<E>,
        {
            let mut w = [<E as #p_::Zero>::zero(); #n];
            Self::interpolant_weights(theta, &mut w);
            #(#names)*
            #p_::stage(x, &[#(#terms),*])
        }

        #[allow(clippy::too_many_lines, clippy::many_single_char_names, clippy::too_many_arguments)]
        fn adjoint_step_dense<S, E, D, F, V, Er>(
            f: &F,
            t: E,
            h: E,
            x: &#p_::Tensor<S, E, D>,
            y_bar: &#p_::Tensor<S, E, D>,
            dense: &[#p_::Tensor<S, E, D>],
            vjp: &mut V,
            ws: &mut #p_::Workspace<S, E, D>,
        ) -> ::core::result::Result<#p_::AdjointStep<S, E, D>, Er>
        #bounds
        {
            #evals_decl
            #body
        }

        #stored
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::internals::shipped::text as shipped_text;
    use crate::internals::tableau::parse;
    use crate::internals::validate::validate;

    fn method(name: &str) -> Method {
        validate(parse(shipped_text(name).unwrap()).unwrap()).unwrap()
    }

    /// `Σ_j c_j θ^j` at `θ`, exactly.
    fn eval(row: &[BigRational], theta: &BigRational) -> BigRational {
        let mut acc = BigRational::zero();
        let mut pow = theta.clone();
        for c in row {
            acc += c * &pow;
            pow *= theta;
        }
        acc
    }

    /// The derivative of `Σ_j c_j θ^j` at `θ`, exactly.
    fn deriv(row: &[BigRational], theta: &BigRational) -> BigRational {
        let mut acc = BigRational::zero();
        let mut pow = BigRational::one();
        for (j, c) in row.iter().enumerate() {
            acc += c * q(j as i64 + 1) * &pow;
            pow *= theta;
        }
        acc
    }

    #[test]
    fn hermite_matches_the_endpoints_and_their_derivatives() {
        for name in [
            "rk4",
            "euler",
            "midpoint",
            "heun",
            "ralston",
            "rk38",
            "cash_karp",
            "fehlberg2",
            "heun_euler",
        ] {
            let m = method(name);
            let p = interpolant(&m);
            assert!(p.hermite, "{name}");
            assert_eq!(p.rows.len(), if m.fsal { m.s } else { m.s + 1 }, "{name}");
            let one = BigRational::one();
            let zero = BigRational::zero();
            for (i, row) in p.rows.iter().enumerate() {
                let b = m.t.b.get(i).map_or(zero.clone(), |b| b.value.clone());
                // y(1) = y: bᵢ(1) = bᵢ (the extra stage's weight is 0).
                assert_eq!(eval(row, &one), b, "{name} b{i}(1)");
                // y'(0) = f(t, x) = k₁: bᵢ'(0) = δᵢ₁.
                let want0 = if i == 0 { one.clone() } else { zero.clone() };
                assert_eq!(deriv(row, &zero), want0, "{name} b{i}'(0)");
                // y'(1) = f(t + h, y): weight 1 on the last stage.
                let want1 = if i == p.rows.len() - 1 {
                    one.clone()
                } else {
                    zero.clone()
                };
                assert_eq!(deriv(row, &one), want1, "{name} b{i}'(1)");
            }
        }
    }

    #[test]
    fn dense_sections_make_the_fsal_stage_live() {
        let m = method("dopri5");
        let p = interpolant(&m);
        assert!(!p.hermite);
        let sys = dense_stages(&m, &p);
        assert_eq!(sys.live(), [true, true, true, true, true, true, true]);
        // bosh3's Hermite interpolant over its FSAL stage: no extra stage.
        let m = method("bosh3");
        assert_eq!(interpolant(&m).rows.len(), 4);
        // rk4: the extra stage f(t + h, y) is rebuilt, so every k is needed.
        let m = method("rk4");
        let p = interpolant(&m);
        let sys = dense_stages(&m, &p);
        assert_eq!(sys.s, 5);
        assert!(sys.needs_k().iter().take(4).all(|&n| n));
    }

    #[test]
    fn the_stage_store_covers_the_dense_sweep_through_the_steps_result() {
        // dopri5: the interpolant reads the FSAL stage, whose state is only the step's result.
        let m = method("dopri5");
        let sys = dense_stages(&m, &interpolant(&m));
        assert!(stored_states(&sys, &kept_stages(&m), None).is_none());
        let sources = stored_states(&sys, &kept_stages(&m), Some(6)).unwrap();
        assert_eq!(
            sources[6].to_string(),
            ":: core :: clone :: Clone :: clone (y)"
        );
        assert!(methods(&m, &interpolant(&m))
            .to_string()
            .contains("fn adjoint_step_dense_stored"));
        // rk4 (Hermite, not FSAL): the extra stage f(t + h, y) is the fifth.
        let m = method("rk4");
        let p = interpolant(&m);
        let sys = dense_stages(&m, &p);
        assert_eq!(sys.s, 5);
        let sources = stored_states(&sys, &kept_stages(&m), Some(4)).unwrap();
        assert_eq!(
            sources[3].to_string(),
            ":: core :: clone :: Clone :: clone (& stages [2])"
        );
    }

    #[test]
    fn a_dense_section_may_use_the_extra_stage() {
        // dopri8 (13 stages, not FSAL): its [dense] section's 14th row weighs f(t + h, y).
        let m = method("dopri8");
        assert!(!m.fsal);
        let p = interpolant(&m);
        assert!(!p.hermite);
        assert_eq!((p.rows.len(), p.order), (14, 5));
        let sys = dense_stages(&m, &p);
        assert_eq!(sys.s, 14);
        assert!(sys.dense[13] && !sys.dense[1]);
        // Its state is the step's result, so the stage store serves it without a rebuild.
        let sources = stored_states(&sys, &kept_stages(&m), Some(13)).unwrap();
        assert_eq!(
            sources[13].to_string(),
            ":: core :: clone :: Clone :: clone (y)"
        );
        let code = methods(&m, &p).to_string();
        assert!(code.contains("fn adjoint_step_dense_stored"), "{code}");
        assert!(code.contains("(h * w [13] , k14)"), "{code}");
    }

    #[test]
    fn zero_polynomials_produce_no_code() {
        // dopri5's b₂(θ) = 0.
        let m = method("dopri5");
        let code = methods(&m, &interpolant(&m)).to_string();
        assert!(code.contains("w [1] = < E as"), "{code}");
        assert!(!code.contains("(h * w [1] , k2)"), "{code}");
        assert!(!code.contains("& dense [1]"), "{code}");
        assert!(code.contains("& dense [6]"), "{code}");
    }
}
