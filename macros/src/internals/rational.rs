//! Exact parsing of coefficient strings and correctly rounded conversion to `f64`.

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{One, Signed, ToPrimitive, Zero};

/// A coefficient: its exact value, whether it was written as a decimal, and the text.
#[derive(Clone, Debug, PartialEq)]
pub struct Coef {
    pub value: BigRational,
    pub decimal: bool,
    pub text: String,
}

impl Coef {
    pub fn is_zero(&self) -> bool {
        self.value.is_zero()
    }

    /// The nearest `f64` (ties to even).
    #[cfg(test)]
    pub fn to_f64(&self) -> f64 {
        to_f64(&self.value)
    }
}

/// Parses `"44/45"`, `"-3"`, `"0.161"`, `"-1.5e-3"` exactly. Returns a message on failure.
pub fn parse(text: &str) -> Result<Coef, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("is an empty string".into());
    }
    if let Some((num, den)) = s.split_once('/') {
        let n = parse_int(num.trim()).ok_or_else(|| format!("`{text}` is not a rational `p/q`"))?;
        let d = parse_int(den.trim()).ok_or_else(|| format!("`{text}` is not a rational `p/q`"))?;
        if d.is_zero() {
            return Err(format!("`{text}` has a zero denominator"));
        }
        return Ok(Coef {
            value: BigRational::new(n, d),
            decimal: false,
            text: text.to_string(),
        });
    }
    if let Some(n) = parse_int(s) {
        return Ok(Coef {
            value: BigRational::from_integer(n),
            decimal: false,
            text: text.to_string(),
        });
    }
    parse_decimal(s)
        .map(|value| Coef {
            value,
            decimal: true,
            text: text.to_string(),
        })
        .ok_or_else(|| format!("`{text}` is neither a rational `p/q` nor a decimal"))
}

fn parse_int(s: &str) -> Option<BigInt> {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.trim_start_matches('+').parse().ok()
}

fn parse_decimal(s: &str) -> Option<BigRational> {
    let (mantissa, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], s[i + 1..].parse::<i32>().ok()?),
        None => (s, 0),
    };
    let (neg, body) = match mantissa.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, mantissa.strip_prefix('+').unwrap_or(mantissa)),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits: BigInt = format!("0{int}{frac}").parse().ok()?;
    let scale = exp - frac.len() as i32;
    let ten = BigInt::from(10u32);
    let mut value = BigRational::from_integer(digits);
    let factor = BigRational::from_integer(num_traits::pow(ten, scale.unsigned_abs() as usize));
    if scale >= 0 {
        value *= factor;
    } else {
        value /= factor;
    }
    Some(if neg { -value } else { value })
}

/// Correctly rounded conversion (round to nearest, ties to even) for normal-range values.
pub fn to_f64(q: &BigRational) -> f64 {
    if q.is_zero() {
        return 0.0;
    }
    let num = q.numer().abs();
    let den = q.denom().clone();
    // Choose `shift` so that floor(num / (den 2^shift)) has exactly 54 bits:
    // 53 significant bits and one round bit; the remainder is the sticky bit.
    let mut shift = num.bits() as i64 - den.bits() as i64 - 54;
    let (quot, rem) = loop {
        let (n, d) = if shift >= 0 {
            (num.clone(), &den << (shift as usize))
        } else {
            (&num << ((-shift) as usize), den.clone())
        };
        let quot = &n / &d;
        if quot.bits() > 54 {
            shift += 1;
        } else if quot.bits() < 54 {
            shift -= 1;
        } else {
            break (quot, n % d);
        }
    };
    let one = BigInt::one();
    let round = (&quot & &one) == one;
    let mut m = quot >> 1usize;
    let odd = (&m & &one) == one;
    if round && (!rem.is_zero() || odd) {
        m += 1;
    }
    let v = m.to_f64().unwrap_or(f64::NAN) * (2f64).powi((shift + 1) as i32);
    if q.is_negative() {
        -v
    } else {
        v
    }
}

/// The entries of `v` that are not exactly zero, by index, correctly rounded: exact zeros
/// produce no code.
pub fn nonzero<'a>(v: impl IntoIterator<Item = &'a BigRational>) -> Vec<(usize, f64)> {
    v.into_iter()
        .enumerate()
        .filter(|(_, q)| !q.is_zero())
        .map(|(j, q)| (j, to_f64(q)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rationals_integers_and_decimals_exactly() {
        let q = |n: i64, d: i64| BigRational::new(n.into(), d.into());
        assert_eq!(parse("44/45").unwrap().value, q(44, 45));
        assert_eq!(parse("-56/15").unwrap().value, q(-56, 15));
        assert_eq!(parse("3").unwrap().value, q(3, 1));
        assert_eq!(parse("0.161").unwrap().value, q(161, 1000));
        assert!(parse("0.161").unwrap().decimal);
        assert_eq!(parse("-1.5e-3").unwrap().value, q(-3, 2000));
        assert_eq!(parse("2.5E2").unwrap().value, q(250, 1));
        assert!(parse("1/0").is_err());
        assert!(parse("abc").is_err());
        assert!(parse("1/2/3").is_err());
        assert!(parse("").is_err());
        assert!(parse(".").is_err());
    }

    #[test]
    fn rounds_to_nearest_f64() {
        for (n, d) in [
            (1i64, 3i64),
            (2, 3),
            (44, 45),
            (-56, 15),
            (1, 10),
            (212, 729),
            (-25360, 2187),
            (35, 384),
            (1, 1),
        ] {
            let exact = BigRational::new(n.into(), d.into());
            assert_eq!(to_f64(&exact), n as f64 / d as f64, "{n}/{d}");
        }
        // A tie that must round to even: 1 + 2^-53 lies exactly between 1 and the next f64.
        let tie = BigRational::new((BigInt::one() << 53usize) + 1, BigInt::one() << 53usize);
        assert_eq!(to_f64(&tie), 1.0);
        // Just above the tie rounds up.
        let above = BigRational::new((BigInt::one() << 54usize) + 3, BigInt::one() << 54usize);
        assert_eq!(to_f64(&above), 1.0 + f64::EPSILON);
        // Long rationals from dopri8 agree with the shortest decimal that Python prints.
        let big = parse("5490023248/9719169821").unwrap();
        assert_eq!(big.to_f64(), 5490023248f64 / 9719169821f64);
    }
}
