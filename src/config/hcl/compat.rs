//! Rewrites the HCL1 forms that Consul configs commonly use and HCL2
//! parsers reject into equivalent HCL2, keeping a map back to the original
//! offsets so errors still name the user's line.
//!
//! The forms handled:
//! * several items on one line with no separator:
//!   `check { http = "..." interval = "10s" }`, `ports = { http = 1 dns = 2 }`;
//! * quoted keys inside a block: `node_meta { "rack-id" = "r1" }`;
//! * blocks inside an object value: `service = { check { ttl = "5s" } }`.
//!
//! Unlabeled blocks become object attributes (`check {` → `check = {`),
//! which HCL1 (and our converter) treat the same, so the rest is object
//! syntax where newlines separate items. Only used when the plain HCL2
//! parse failed; if the rewrite does not parse either, the caller reports
//! the original error.

/// A rewritten source and where its insertions went.
pub struct Rewrite {
    pub text: String,
    /// (offset in `text`, inserted length, total inserted before it), in
    /// increasing order.
    inserts: Vec<(usize, usize, usize)>,
}

impl Rewrite {
    /// Maps an offset in the rewritten text back to the original.
    pub fn original_offset(&self, offset: usize) -> usize {
        // Insertions do not overlap, so only the last one starting before
        // `offset` can contain it.
        let k = self.inserts.partition_point(|(at, _, _)| *at < offset);
        let Some((at, len, before)) = k.checked_sub(1).and_then(|i| self.inserts.get(i)) else {
            return offset;
        };
        offset - (before + (*len).min(offset - at))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Ident,
    Number,
    Str,
    Heredoc,
    Newline,
    Comment,
    Punct(&'static str),
}

#[derive(Clone, Copy, Debug)]
struct Tok {
    kind: Kind,
    start: usize,
    end: usize,
}

const PUNCTS: &[&str] = &[
    "...", "==", "!=", "<=", ">=", "=>", "&&", "||", "{", "}", "[", "]", "(", ")", ",", "=", ":", "?", "!",
    "+", "-", "*", "/", "%", "<", ">", ".",
];

/// Splits HCL source into tokens; `None` when it cannot (an unterminated
/// string, heredoc or comment), in which case no rewrite is attempted.
fn tokenize(src: &str) -> Option<Vec<Tok>> {
    let b = src.as_bytes();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        let kind = match c {
            b'\n' => {
                i += 1;
                Kind::Newline
            }
            b' ' | b'\t' | b'\r' => {
                i += 1;
                continue;
            }
            b'#' => {
                i = line_end(b, i);
                Kind::Comment
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                i = line_end(b, i);
                Kind::Comment
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let close = find(b, i + 2, b"*/")?;
                i = close + 2;
                Kind::Comment
            }
            b'"' => {
                i = string_end(b, i)?;
                Kind::Str
            }
            b'<' if b.get(i + 1) == Some(&b'<') && heredoc_start(b, i).is_some() => {
                i = heredoc_end(b, i)?;
                Kind::Heredoc
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => {
                while i < b.len()
                    && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'-' || b[i] >= 0x80)
                {
                    i += 1;
                }
                Kind::Ident
            }
            c if c.is_ascii_digit() => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                    // An exponent sign belongs to the number: 1e-3.
                    if (b[i] == b'e' || b[i] == b'E') && matches!(b.get(i + 1), Some(b'+') | Some(b'-')) {
                        i += 1;
                    }
                    i += 1;
                }
                Kind::Number
            }
            _ => {
                let p = PUNCTS.iter().find(|p| b[i..].starts_with(p.as_bytes()))?;
                i += p.len();
                Kind::Punct(p)
            }
        };
        toks.push(Tok { kind, start, end: i });
    }
    Some(toks)
}

fn line_end(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i] != b'\n' {
        i += 1;
    }
    i
}

fn find(b: &[u8], from: usize, pat: &[u8]) -> Option<usize> {
    (from..b.len()).find(|&j| b[j..].starts_with(pat))
}

/// The end (exclusive) of the quoted string starting at `i`, stepping over
/// escapes and `${ ... }` / `%{ ... }` sequences, which may nest strings.
fn string_end(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            b'"' => return Some(j + 1),
            b'\n' => return None,
            b'$' | b'%' if b.get(j + 1) == Some(&b'{') => {
                j = template_end(b, j + 2)?;
            }
            b'$' | b'%' if b.get(j + 1) == Some(&b[j]) && b.get(j + 2) == Some(&b'{') => j += 3,
            _ => j += 1,
        }
    }
    None
}

/// The end of a `${ ... }` body that starts at `i` (just past the brace).
fn template_end(b: &[u8], mut i: usize) -> Option<usize> {
    let mut depth = 1usize;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i = string_end(b, i)?;
                continue;
            }
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The delimiter of a heredoc opening `<<ID` / `<<-ID` at `i`.
fn heredoc_start(b: &[u8], i: usize) -> Option<(usize, &[u8])> {
    let mut j = i + 2;
    if b.get(j) == Some(&b'-') {
        j += 1;
    }
    let id_start = j;
    while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
        j += 1;
    }
    (j > id_start).then(|| (j, &b[id_start..j]))
}

/// The end of a heredoc: the end of the line holding its delimiter alone.
fn heredoc_end(b: &[u8], i: usize) -> Option<usize> {
    let (after_id, id) = heredoc_start(b, i)?;
    let mut line = line_end(b, after_id) + 1;
    while line <= b.len() {
        let end = line_end(b, line);
        if b.get(line..end).map(|l| l.trim_ascii()) == Some(id) {
            return Some(end);
        }
        if end >= b.len() {
            return None;
        }
        line = end + 1;
    }
    None
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    /// The file's top level or a labeled block's body.
    Body,
    /// An object value; also every converted unlabeled block.
    Object,
    /// Brackets, parentheses, and `for` expressions: left alone.
    Other,
}

fn value_end(k: Kind) -> bool {
    matches!(
        k,
        Kind::Ident
            | Kind::Number
            | Kind::Str
            | Kind::Heredoc
            | Kind::Punct("}")
            | Kind::Punct("]")
            | Kind::Punct(")")
    )
}

/// Whether the object or block body opened by the brace at `sig[at]` has a
/// quoted key of its own (`"rack.id" = ...`).
fn has_quoted_key(toks: &[Tok], sig: &[usize], at: usize) -> bool {
    let mut depth = 0usize;
    for (k, &ti) in sig.iter().enumerate().skip(at) {
        match toks[ti].kind {
            Kind::Punct("{") | Kind::Punct("[") | Kind::Punct("(") => depth += 1,
            Kind::Punct("}") | Kind::Punct("]") | Kind::Punct(")") => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return false;
                }
            }
            Kind::Str if depth == 1 => {
                let next = sig.get(k + 1).map(|&i| toks[i].kind);
                if matches!(next, Some(Kind::Punct("=")) | Some(Kind::Punct(":"))) {
                    return true;
                }
            }
            _ => {}
        }
    }
    false
}

/// Whether a newline (or a line comment, which ends in one) directly
/// follows token `ti`.
fn newline_follows(toks: &[Tok], ti: usize) -> bool {
    matches!(toks.get(ti + 1).map(|t| t.kind), Some(Kind::Newline) | Some(Kind::Comment) | None)
}

/// Produces the HCL2 form of `src`, or `None` when nothing needed changing
/// or the source could not be tokenized.
pub fn rewrite(src: &str) -> Option<Rewrite> {
    let toks = tokenize(src)?;
    // Indices of significant tokens (not comments or newlines).
    let sig: Vec<usize> =
        (0..toks.len()).filter(|&i| !matches!(toks[i].kind, Kind::Comment | Kind::Newline)).collect();
    let mut inserts: Vec<(usize, &'static str)> = Vec::new();
    let mut stack = vec![Ctx::Body];
    // The `{` tokens that open a converted block, which become objects.
    let mut converted: std::collections::HashSet<usize> = std::collections::HashSet::new();
    let text = |t: &Tok| &src[t.start..t.end];

    for (n, &ti) in sig.iter().enumerate() {
        let tok = toks[ti];
        let prev = n.checked_sub(1).map(|p| sig[p]);
        // Whether a newline separates this token from the previous one.
        let new_line = match prev {
            None => true,
            Some(p) => toks[p + 1..ti].iter().any(|t| t.kind == Kind::Newline || text(t).contains('\n')),
        };
        let next = |k: usize| sig.get(n + k).map(|&i| toks[i]);
        let ctx = stack.last().copied().unwrap_or(Ctx::Other);

        if matches!(ctx, Ctx::Body | Ctx::Object) && matches!(tok.kind, Kind::Ident | Kind::Str) {
            // Does an item (attribute or block) start here?
            let after = next(1).map(|t| t.kind);
            let is_attr = matches!(after, Some(Kind::Punct("=")) | Some(Kind::Punct(":")));
            let mut k = 1;
            while next(k)
                .is_some_and(|t| t.kind == Kind::Str || (t.kind == Kind::Ident && tok.kind == Kind::Ident))
            {
                k += 1;
            }
            let is_block = tok.kind == Kind::Ident && next(k).is_some_and(|t| t.kind == Kind::Punct("{"));
            if (is_attr || is_block) && !new_line && prev.is_some_and(|p| value_end(toks[p].kind)) {
                inserts.push((tok.start, "\n"));
            }
            // An unlabeled block becomes an object attribute where HCL2 has
            // no block syntax: inside an object value, or when its body has
            // quoted keys (`node_meta { "rack.id" = "r1" }`).
            if is_block && k == 1 && (ctx == Ctx::Object || has_quoted_key(&toks, &sig, n + 1)) {
                if let Some(brace) = sig.get(n + 1) {
                    inserts.push((toks[*brace].start, "= "));
                    converted.insert(*brace);
                }
            }
        }

        match tok.kind {
            Kind::Punct("{") => {
                let opens_object = converted.contains(&ti)
                    || !prev.is_some_and(|p| matches!(toks[p].kind, Kind::Ident | Kind::Str));
                let is_for = next(1).is_some_and(|t| t.kind == Kind::Ident && text(&t) == "for");
                stack.push(if is_for {
                    Ctx::Other
                } else if opens_object {
                    Ctx::Object
                } else {
                    // A block: HCL2 wants its body on lines of its own.
                    if next(1).is_some_and(|t| t.kind != Kind::Punct("}")) && !newline_follows(&toks, ti) {
                        inserts.push((tok.end, "\n"));
                    }
                    Ctx::Body
                });
            }
            Kind::Punct("[") | Kind::Punct("(") => stack.push(Ctx::Other),
            Kind::Punct("}") => {
                if ctx == Ctx::Body
                    && stack.len() > 1
                    && !new_line
                    && prev.is_some_and(|p| toks[p].kind != Kind::Punct("{"))
                {
                    inserts.push((tok.start, "\n"));
                }
                stack.pop()?;
            }
            Kind::Punct("]") | Kind::Punct(")") => {
                stack.pop()?;
            }
            _ => {}
        }
    }
    if inserts.is_empty() || stack.len() != 1 {
        return None;
    }
    inserts.sort_by_key(|(at, _)| *at);
    let mut out = String::with_capacity(src.len() + inserts.len() * 2);
    let mut map = Vec::with_capacity(inserts.len());
    let mut last = 0;
    let mut total = 0;
    for (at, s) in inserts {
        out.push_str(&src[last..at]);
        map.push((out.len(), s.len(), total));
        total += s.len();
        out.push_str(s);
        last = at;
    }
    out.push_str(&src[last..]);
    Some(Rewrite { text: out, inserts: map })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rw(src: &str) -> String {
        rewrite(src).map(|r| r.text).unwrap_or_else(|| "<unchanged>".into())
    }

    #[test]
    fn one_line_blocks_get_their_own_lines() {
        assert_eq!(
            rw("service { name = \"web\" check { http = \"http://x\" interval = \"10s\" } }"),
            "service {\n name = \"web\" \ncheck {\n http = \"http://x\" \ninterval = \"10s\" \n} \n}"
        );
        assert_eq!(rw("service {} service {}"), "service {} \nservice {}");
    }

    #[test]
    fn blocks_inside_objects_become_attributes() {
        assert_eq!(rw("service = { check { ttl = \"5s\" } }"), "service = { check = { ttl = \"5s\" } }");
    }

    #[test]
    fn objects_without_separators() {
        assert_eq!(rw("ports = { http = 8500 dns = -1 }"), "ports = { http = 8500 \ndns = -1 }");
        assert_eq!(rw("a = 1 b = [1, 2] c = true"), "a = 1 \nb = [1, 2] \nc = true");
    }

    #[test]
    fn quoted_keys_and_labels() {
        assert_eq!(rw("node_meta { \"rack-id\" = \"r1\" }"), "node_meta = { \"rack-id\" = \"r1\" }");
        assert_eq!(rw("svc \"a\" { x = 1 y = 2 }"), "svc \"a\" {\n x = 1 \ny = 2 \n}");
    }

    #[test]
    fn strings_heredocs_and_comments_are_opaque() {
        // Nothing that looks like syntax inside these is touched.
        let src =
            "a = \"x = 1 { y = 2 }\" # b = 1 c = 2\nd = <<EOF\ne = 1 f = 2\nEOF\ng = \"${h(\"}\")}\" k = 1";
        assert_eq!(
            rw(src),
            "a = \"x = 1 { y = 2 }\" # b = 1 c = 2\nd = <<EOF\ne = 1 f = 2\nEOF\ng = \"${h(\"}\")}\" \nk = 1"
        );
    }

    #[test]
    fn for_expressions_are_left_alone() {
        assert_eq!(rw("a = { for k, v in m : k => v }"), "<unchanged>");
    }

    #[test]
    fn garbage_does_not_rewrite() {
        for src in ["a = \"unterminated", "a = {", "}", "a = <<EOF\nno end", "/* open", "a = ]"] {
            assert!(rewrite(src).is_none(), "{src}");
        }
    }

    #[test]
    fn offsets_map_back() {
        let r = rewrite("a = 1 b = 2").unwrap();
        assert_eq!(r.text, "a = 1 \nb = 2");
        // `b` moves from 6 to 7 and `2` from 10 to 11; the inserted
        // newline itself maps to where it was inserted.
        assert_eq!(r.original_offset(7), 6);
        assert_eq!(r.original_offset(11), 10);
        assert_eq!(r.original_offset(6), 6);
        assert_eq!(r.original_offset(2), 2);
    }
}
