//! Decoding literal text the way Go's `strconv` does, because bexpr keeps
//! values as raw text and converts them with `strconv` once it knows the
//! field's type: string unquoting (`Unquote`), integers with base prefixes
//! and `_` separators (`ParseInt(s, 0, 64)`), booleans (`ParseBool`).
//! Pure functions over `&str`; errors are worded like Go's.

/// Decodes the inside of a `"..."` literal: Go escapes (`\n`, `\t`, `\\`,
/// `\"`, `\xHH`, `\OOO`, `\uHHHH`, `\UHHHHHHHH`, ...). A raw newline is not
/// allowed, as in Go.
pub fn unquote_double(body: &str) -> Result<String, String> {
    if body.contains('\n') {
        return Err("newline in string literal".into());
    }
    if !body.contains('\\') {
        return Ok(body.to_string());
    }
    let bytes = body.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        let Some(&esc) = bytes.get(i + 1) else {
            return Err("string literal ends in an unfinished escape".into());
        };
        i += 2;
        match esc {
            b'a' => out.push(0x07),
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(0x0b),
            b'\\' => out.push(b'\\'),
            b'"' => out.push(b'"'),
            b'x' => {
                let v = hex_digits(bytes, i, 2).ok_or("invalid \\x escape in string literal")?;
                out.push(v as u8);
                i += 2;
            }
            b'0'..=b'7' => {
                // Three octal digits in all, the first one already read.
                let mut v = u32::from(esc - b'0');
                for k in 0..2 {
                    match bytes.get(i + k) {
                        Some(d @ b'0'..=b'7') => v = v * 8 + u32::from(d - b'0'),
                        _ => return Err("invalid octal escape in string literal".into()),
                    }
                }
                if v > 255 {
                    return Err("octal escape out of range in string literal".into());
                }
                out.push(v as u8);
                i += 2;
            }
            b'u' | b'U' => {
                let n = if esc == b'u' { 4 } else { 8 };
                let v = hex_digits(bytes, i, n).ok_or("invalid unicode escape in string literal")?;
                let c = char::from_u32(v).ok_or("unicode escape is not a valid character")?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                i += n;
            }
            other => {
                return Err(format!(
                    "unknown escape sequence \\{} in string literal",
                    char::from(other).escape_default()
                ))
            }
        }
    }
    String::from_utf8(out).map_err(|_| "string literal is not valid UTF-8 after unescaping".to_string())
}

fn hex_digits(bytes: &[u8], start: usize, n: usize) -> Option<u32> {
    let mut v: u32 = 0;
    for k in 0..n {
        let d = char::from(*bytes.get(start + k)?).to_digit(16)?;
        v = v.checked_mul(16)?.checked_add(d)?;
    }
    Some(v)
}

/// Decodes the inside of a `` `...` `` literal: no escapes; carriage
/// returns are dropped, as Go does for raw strings.
pub fn unquote_raw(body: &str) -> String {
    body.replace('\r', "")
}

/// Go's rule for `_` in numbers: only between digits (or right after a
/// base prefix), never at the start or the end, never doubled.
fn underscores_ok(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let b = s.as_bytes();
    let lower = |c: u8| c | 0x20;
    let (mut i, mut last, hex) = match b {
        [b'0', p, ..] if matches!(lower(*p), b'b' | b'o' | b'x') => (2, b'0', lower(*p) == b'x'),
        _ => (0, b'^', false),
    };
    while let Some(&c) = b.get(i) {
        i += 1;
        if c.is_ascii_digit() || (hex && (b'a'..=b'f').contains(&lower(c))) {
            last = b'0';
        } else if c == b'_' {
            if last != b'0' {
                return false;
            }
            last = b'_';
        } else {
            if last == b'_' {
                return false;
            }
            last = b'!';
        }
    }
    last != b'_'
}

enum UintError {
    Syntax,
    Range,
}

/// `strconv.ParseUint(s, 0, 64)` without the sign handling.
fn parse_uint_base0(s: &str) -> Result<u64, UintError> {
    if s.is_empty() {
        return Err(UintError::Syntax);
    }
    let b = s.as_bytes();
    let (radix, digits): (u32, &[u8]) = match b {
        [b'0', p, _, ..] if p | 0x20 == b'b' => (2, b.get(2..).unwrap_or_default()),
        [b'0', p, _, ..] if p | 0x20 == b'o' => (8, b.get(2..).unwrap_or_default()),
        [b'0', p, _, ..] if p | 0x20 == b'x' => (16, b.get(2..).unwrap_or_default()),
        [b'0', ..] => (8, b.get(1..).unwrap_or_default()),
        _ => (10, b),
    };
    let mut n: u64 = 0;
    let mut underscores = false;
    for &c in digits {
        if c == b'_' {
            underscores = true;
            continue;
        }
        let d = char::from(c).to_digit(radix).ok_or(UintError::Syntax)?;
        n = n
            .checked_mul(u64::from(radix))
            .and_then(|n| n.checked_add(u64::from(d)))
            .ok_or(UintError::Range)?;
    }
    if underscores && !underscores_ok(s) {
        return Err(UintError::Syntax);
    }
    Ok(n)
}

/// `strconv.ParseInt(s, 0, 64)`: optional sign, then `0x`/`0o`/`0b`/`0`
/// prefixes, `_` separators.
pub fn parse_int(s: &str) -> Result<i64, String> {
    let fail = |why: &str| format!("strconv.ParseInt: parsing {s:?}: {why}");
    let (neg, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, s.get(1..).unwrap_or_default()),
        Some(b'+') => (false, s.get(1..).unwrap_or_default()),
        _ => (false, s),
    };
    let magnitude = match parse_uint_base0(rest) {
        Ok(m) => m,
        Err(UintError::Syntax) => return Err(fail("invalid syntax")),
        Err(UintError::Range) => return Err(fail("value out of range")),
    };
    if neg {
        0i64.checked_sub_unsigned(magnitude).ok_or_else(|| fail("value out of range"))
    } else {
        i64::try_from(magnitude).map_err(|_| fail("value out of range"))
    }
}

/// `strconv.ParseUint(s, 0, 64)`.
pub fn parse_uint(s: &str) -> Result<u64, String> {
    let fail = |why: &str| format!("strconv.ParseUint: parsing {s:?}: {why}");
    match parse_uint_base0(s) {
        Ok(v) => Ok(v),
        Err(UintError::Syntax) => Err(fail("invalid syntax")),
        Err(UintError::Range) => Err(fail("value out of range")),
    }
}

/// `strconv.ParseFloat(s, 64)` for decimal forms, `inf`/`infinity`/`nan`
/// and `_` separators (Go's hexadecimal floats are not accepted).
pub fn parse_float(s: &str) -> Result<f64, String> {
    let fail = || format!("strconv.ParseFloat: parsing {s:?}: invalid syntax");
    let cleaned: String = if s.contains('_') {
        if !underscores_ok(s) {
            return Err(fail());
        }
        s.replace('_', "")
    } else {
        s.to_string()
    };
    // Rust's parser takes a few spellings Go does not ("+.5" is fine in
    // both; "1." and ".5" too); it refuses the hex forms Go takes.
    cleaned.parse::<f64>().map_err(|_| fail())
}

/// `strconv.ParseBool`.
pub fn parse_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!("strconv.ParseBool: parsing {s:?}: invalid syntax")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn double_quoted_escapes_follow_go() {
        assert_eq!(unquote_double(r#"a\tb\n\\\x41\101\u00e9\U0001F600\""#).unwrap(), "a\tb\n\\AAé😀\"");
        assert_eq!(unquote_double("plain").unwrap(), "plain");
        assert!(unquote_double(r"\'").is_err(), "\\' is only valid inside single quotes in Go");
        assert!(unquote_double(r"\q").is_err());
        assert!(unquote_double(r"\x4").is_err());
        assert!(unquote_double(r"\400").is_err(), "octal escapes stop at 255");
        assert!(unquote_double(r"\ud800").is_err(), "surrogates are not characters");
        assert!(unquote_double(r"\xff").is_err(), "a lone byte is not UTF-8");
        assert!(unquote_double("a\nb").is_err());
        assert!(unquote_double("trailing\\").is_err());
    }

    #[test]
    fn raw_strings_drop_carriage_returns_only() {
        assert_eq!(unquote_raw("a\\n\r\nb"), "a\\n\nb");
    }

    #[test]
    fn integers_take_go_prefixes_and_separators() {
        assert_eq!(parse_int("42"), Ok(42));
        assert_eq!(parse_int("-42"), Ok(-42));
        assert_eq!(parse_int("+7"), Ok(7));
        assert_eq!(parse_int("0x1F"), Ok(31));
        assert_eq!(parse_int("0o17"), Ok(15));
        assert_eq!(parse_int("017"), Ok(15));
        assert_eq!(parse_int("0b101"), Ok(5));
        assert_eq!(parse_int("1_000"), Ok(1000));
        assert_eq!(parse_int("0"), Ok(0));
        assert_eq!(parse_int("-9223372036854775808"), Ok(i64::MIN));
        assert!(parse_int("9223372036854775808").unwrap_err().contains("value out of range"));
        for bad in ["", "-", "abc", "1.5", "_1", "1_", "1__0", "08", "0x", "0b2", "1e3"] {
            let e = parse_int(bad).unwrap_err();
            assert!(
                e.starts_with("strconv.ParseInt: parsing ") && e.ends_with("invalid syntax"),
                "{bad:?}: {e}"
            );
        }
        assert_eq!(parse_uint("0xff"), Ok(255));
        assert!(parse_uint("-1").is_err());
    }

    #[test]
    fn floats_and_bools() {
        assert_eq!(parse_float("1.5"), Ok(1.5));
        assert_eq!(parse_float("1_0.5"), Ok(10.5));
        assert!(parse_float("x").is_err());
        assert_eq!(parse_bool("T"), Ok(true));
        assert_eq!(parse_bool("0"), Ok(false));
        assert!(parse_bool("yes").unwrap_err().contains("invalid syntax"));
    }
}
