//! Why a go-sockaddr template was refused. The config loader prints these
//! after "<key>: error in go-sockaddr template <template>: ".

use std::net::IpAddr;

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    // ----- syntax (parse)
    #[error("unclosed action: missing \"}}}}\"")]
    UnclosedAction,
    #[error("unclosed comment in action")]
    UnclosedComment,
    #[error("empty action")]
    EmptyAction,
    #[error("missing function before \"|\"")]
    MissingFunctionBefore,
    #[error("missing function after \"|\"")]
    MissingFunctionAfter,
    #[error("template keyword {0:?} is not supported in address templates")]
    Keyword(String),
    #[error(
        "{function}: argument {arg:?} must be a quoted string or a number (nested calls are not supported)"
    )]
    NestedCall { function: String, arg: String },
    #[error("expected a function name, found the string {0:?}")]
    StringForFunction(String),
    #[error("expected a function name, found the number {0}")]
    NumberForFunction(i64),
    #[error("\"||\" is not supported")]
    DoublePipe,
    #[error("unsupported escape \"\\{0}\" in string")]
    UnsupportedEscape(char),
    #[error("unterminated string")]
    UnterminatedString,
    #[error("unterminated raw string")]
    UnterminatedRawString,
    #[error("invalid number {0:?}")]
    InvalidNumber(String),
    /// `.` or `$`.
    #[error("{0:?}: variables and fields are not supported in address templates")]
    Variable(char),
    #[error("parentheses are not supported in address templates")]
    Parentheses,
    #[error("unexpected character {0:?}")]
    UnexpectedCharacter(char),

    // ----- functions and their arguments (eval)
    #[error(
        "the pipeline ends in a list of interfaces; finish it with attr or join (for example | attr \"address\")"
    )]
    EndsInList,
    #[error("{function} takes {want} argument{}, got {got}", if *want == 1 { "" } else { "s" })]
    Arity { function: String, want: usize, got: usize },
    #[error("{0} does not take piped input")]
    PipedInput(String),
    #[error("template function {0:?} is not supported by this agent")]
    UnsupportedFunction(String),
    #[error("unknown function {0:?}")]
    UnknownFunction(String),
    /// `got` names what was piped in ("a string").
    #[error("{function}: expected a list of interfaces, got {got}")]
    NotAList { function: String, got: &'static str },
    #[error("{0}: needs a list of interfaces piped in (for example GetAllInterfaces | {0} ...)")]
    NeedsList(String),
    /// `got` is the argument as written (a string is quoted).
    #[error("{function}: expected a number, got {got}")]
    NotANumber { function: String, got: String },

    // ----- selectors, sort keys and attributes (select)
    #[error("unsupported selector {0:?} (address, flag, name, network, port, rfc, size or type)")]
    UnsupportedSelector(String),
    /// `what` is the selector the pattern is for.
    #[error("invalid {what} regular expression {pattern:?}: {source}")]
    InvalidRegex { what: &'static str, pattern: String, source: regex_lite::Error },
    #[error("invalid network {0:?}")]
    InvalidNetwork(String),
    #[error("invalid RFC number {0:?}")]
    InvalidRfc(String),
    #[error("unsupported RFC {0}")]
    UnsupportedRfc(u32),
    #[error("invalid mask size {0:?}")]
    InvalidMaskSize(String),
    #[error("mask size {0} is out of range")]
    MaskSizeOutOfRange(u8),
    #[error("unsupported type {0:?} (ip, ipv4, ipv6 or unix)")]
    UnsupportedType(String),
    #[error("unknown interface flag {0:?}")]
    UnknownFlag(String),
    #[error("unsupported sort key {0:?} (address, default, name, port, private, size or type)")]
    UnsupportedSortKey(String),
    #[error("unsupported unique selector {0:?} (address or name)")]
    UnsupportedUnique(String),
    #[error("limit must not be negative (got {0})")]
    NegativeLimit(i64),
    #[error("offset {offset} is past the end of the list of {len} addresses")]
    OffsetPastEnd { offset: i64, len: usize },
    #[error(
        "unsupported attribute {name:?} for {addr} (address, name, flags, type, network, netmask, mask_bits, size, broadcast, first_usable, last_usable, string, octets, port, uint32, uint128)"
    )]
    UnsupportedAttribute { name: String, addr: IpAddr },
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Texts that need care in a format string (braces, escapes, plurals)
    /// and ones no other test pins, word for word.
    #[test]
    fn messages() {
        let text = |e: TemplateError| e.to_string();
        assert_eq!(text(TemplateError::UnclosedAction), r#"unclosed action: missing "}}""#);
        assert_eq!(text(TemplateError::UnsupportedEscape('x')), r#"unsupported escape "\x" in string"#);
        assert_eq!(text(TemplateError::DoublePipe), r#""||" is not supported"#);
        assert_eq!(text(TemplateError::MissingFunctionAfter), r#"missing function after "|""#);
        assert_eq!(
            text(TemplateError::Arity { function: "attr".into(), want: 1, got: 0 }),
            "attr takes 1 argument, got 0"
        );
        assert_eq!(
            text(TemplateError::Arity { function: "join".into(), want: 2, got: 1 }),
            "join takes 2 arguments, got 1"
        );
        assert_eq!(
            text(TemplateError::NestedCall { function: "attr".into(), arg: "GetPrivateIP".into() }),
            r#"attr: argument "GetPrivateIP" must be a quoted string or a number (nested calls are not supported)"#
        );
        assert_eq!(
            text(TemplateError::Variable('$')),
            "'$': variables and fields are not supported in address templates"
        );
        assert_eq!(
            text(TemplateError::NeedsList("sort".into())),
            "sort: needs a list of interfaces piped in (for example GetAllInterfaces | sort ...)"
        );
        assert_eq!(
            text(TemplateError::NotAList { function: "attr".into(), got: "a string" }),
            "attr: expected a list of interfaces, got a string"
        );
        assert_eq!(
            text(TemplateError::NotANumber { function: "limit".into(), got: "\"x\"".into() }),
            r#"limit: expected a number, got "x""#
        );
        assert_eq!(text(TemplateError::NegativeLimit(-1)), "limit must not be negative (got -1)");
        assert_eq!(
            text(TemplateError::OffsetPastEnd { offset: -7, len: 3 }),
            "offset -7 is past the end of the list of 3 addresses"
        );
        assert_eq!(
            text(TemplateError::UnsupportedAttribute { name: "colour".into(), addr: IpAddr::from([0u8; 4]) }),
            "unsupported attribute \"colour\" for 0.0.0.0 (address, name, flags, type, network, netmask, mask_bits, size, broadcast, first_usable, last_usable, string, octets, port, uint32, uint128)"
        );
        assert_eq!(text(TemplateError::MaskSizeOutOfRange(200)), "mask size 200 is out of range");
        assert_eq!(text(TemplateError::UnsupportedRfc(1)), "unsupported RFC 1");
    }
}
