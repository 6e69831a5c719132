//! Go-compatible durations: Consul's config files, flags and query
//! parameters (`wait=5m`, `"interval": "10s"`, `72h0m0s`) use Go's
//! `time.ParseDuration` grammar and print with `Duration.String`. Both are
//! reproduced here exactly, because humantime and friends accept and print
//! other forms.

use std::fmt;
use std::time::Duration;

/// Why a duration string was refused; the text follows Go's messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("time: invalid duration {0:?}")]
    Invalid(String),
    #[error("time: missing unit in duration {0:?}")]
    MissingUnit(String),
    #[error("time: unknown unit {unit:?} in duration {input:?}")]
    UnknownUnit { unit: String, input: String },
    #[error("time: negative duration {0:?} is not allowed here")]
    Negative(String),
}

/// Parses a Go duration into signed nanoseconds.
pub fn parse_nanos(input: &str) -> Result<i128, DurationError> {
    let invalid = || DurationError::Invalid(input.to_string());
    let mut s = input;
    let mut neg = false;
    if let Some(rest) = s.strip_prefix('-') {
        neg = true;
        s = rest;
    } else if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: i128 = 0;
    while !s.is_empty() {
        // Integer part.
        let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
        let int_part = &s[..int_len];
        s = &s[int_len..];
        // Fraction.
        let mut frac_part = "";
        if let Some(rest) = s.strip_prefix('.') {
            let frac_len = rest.bytes().take_while(u8::is_ascii_digit).count();
            frac_part = &rest[..frac_len];
            s = &rest[frac_len..];
            if int_part.is_empty() && frac_part.is_empty() {
                return Err(invalid());
            }
        } else if int_part.is_empty() {
            return Err(invalid());
        }
        // Unit.
        let unit_len = s
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map(|(i, _)| i)
            .unwrap_or(s.len());
        if unit_len == 0 {
            return Err(DurationError::MissingUnit(input.to_string()));
        }
        let unit = &s[..unit_len];
        s = &s[unit_len..];
        let scale: i128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(DurationError::UnknownUnit { unit: unit.to_string(), input: input.to_string() }),
        };
        let int_val: i128 = if int_part.is_empty() { 0 } else { int_part.parse().map_err(|_| invalid())? };
        let mut value = int_val.checked_mul(scale).ok_or_else(invalid)?;
        if !frac_part.is_empty() {
            // Go keeps the fraction's precision up to the nanosecond.
            let mut frac_scale = scale;
            for digit in frac_part.bytes() {
                frac_scale /= 10;
                if frac_scale == 0 {
                    break;
                }
                value += i128::from(digit - b'0') * frac_scale;
            }
        }
        total = total.checked_add(value).ok_or_else(invalid)?;
        if total > i128::from(i64::MAX) {
            return Err(invalid());
        }
    }
    Ok(if neg { -total } else { total })
}

/// Parses a non-negative Go duration.
pub fn parse(input: &str) -> Result<Duration, DurationError> {
    let nanos = parse_nanos(input.trim())?;
    if nanos < 0 {
        return Err(DurationError::Negative(input.to_string()));
    }
    Ok(Duration::from_nanos(nanos as u64))
}

/// A `Duration` that prints as Go's `Duration.String` does (`72h0m0s`, `1.5s`, `300ms`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct GoDuration(pub Duration);

impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_nanos(self.0.as_nanos() as i128))
    }
}

/// Formats signed nanoseconds exactly as Go's `Duration.String`.
pub fn format_nanos(nanos: i128) -> String {
    if nanos == 0 {
        return "0s".to_string();
    }
    let neg = nanos < 0;
    let u = nanos.unsigned_abs();
    let mut out = String::new();
    if u < 1_000_000_000 {
        // Sub-second values use a smaller unit with a fraction.
        let (unit, scale) = if u < 1_000 {
            ("ns", 1u128)
        } else if u < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        out.push_str(&fmt_frac(u, scale));
        out.push_str(unit);
    } else {
        let hours = u / 3_600_000_000_000;
        let rem = u % 3_600_000_000_000;
        let minutes = rem / 60_000_000_000;
        let sec_nanos = rem % 60_000_000_000;
        if hours > 0 {
            out.push_str(&format!("{hours}h"));
        }
        if hours > 0 || minutes > 0 {
            out.push_str(&format!("{minutes}m"));
        }
        out.push_str(&fmt_frac(sec_nanos, 1_000_000_000));
        out.push('s');
    }
    if neg {
        out.insert(0, '-');
    }
    out
}

fn fmt_frac(value: u128, scale: u128) -> String {
    let whole = value / scale;
    let frac = value % scale;
    if frac == 0 {
        return whole.to_string();
    }
    let width = scale.to_string().len() - 1;
    let digits = format!("{frac:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// Formats a `Duration` the Go way.
pub fn format(d: Duration) -> String {
    format_nanos(d.as_nanos() as i128)
}

/// Serde support for duration fields written as Go strings, as Consul's
/// JSON does (`"LockDelay": "15s"`), also accepting integer nanoseconds.
pub mod serde_go {
    use serde::{de, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        d.deserialize_any(DurationVisitor)
    }

    pub(crate) struct DurationVisitor;

    impl de::Visitor<'_> for DurationVisitor {
        type Value = Duration;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a duration such as \"10s\" or integer nanoseconds")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
            super::parse(v).map_err(E::custom)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
            Ok(Duration::from_nanos(v))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
            u64::try_from(v).map(Duration::from_nanos).map_err(|_| E::custom("negative duration"))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
            if v.is_finite() && v >= 0.0 {
                Ok(Duration::from_nanos(v as u64))
            } else {
                Err(E::custom("invalid duration"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_forms() {
        let cases: &[(&str, i128)] = &[
            ("0", 0),
            ("10s", 10_000_000_000),
            ("1h30m", 5_400_000_000_000),
            ("1.5h", 5_400_000_000_000),
            ("300ms", 300_000_000),
            ("1us", 1_000),
            ("1µs", 1_000),
            ("1μs", 1_000),
            ("-1s", -1_000_000_000),
            ("72h0m0s", 259_200_000_000_000),
            (".5s", 500_000_000),
            ("1.s", 1_000_000_000),
            ("2h45m3.5s", 9_903_500_000_000),
        ];
        for (s, want) in cases {
            assert_eq!(parse_nanos(s).unwrap(), *want, "{s}");
        }
    }

    #[test]
    fn rejects_non_go_forms() {
        for s in ["", "1", "2d", "1M", "1h 30m", "s", ".s", "-", "10", "1x"] {
            assert!(parse_nanos(s).is_err(), "{s} should be rejected");
        }
        assert!(parse("-1s").is_err());
    }

    #[test]
    fn formats_like_go() {
        let cases: &[(i128, &str)] = &[
            (0, "0s"),
            (1, "1ns"),
            (1_500, "1.5µs"),
            (300_000_000, "300ms"),
            (1_500_000_000, "1.5s"),
            (259_200_000_000_000, "72h0m0s"),
            (90_000_000_000, "1m30s"),
            (3_600_000_000_000, "1h0m0s"),
            (-1_000_000_000, "-1s"),
            (91_320_000, "91.32ms"),
        ];
        for (n, want) in cases {
            assert_eq!(format_nanos(*n), *want);
        }
    }

    #[test]
    fn round_trips() {
        for n in [1i128, 999, 1_000_001, 59_999_999_999, 3_600_000_000_001, 123_456_789_012_345] {
            assert_eq!(parse_nanos(&format_nanos(n)).unwrap(), n);
        }
    }
}
