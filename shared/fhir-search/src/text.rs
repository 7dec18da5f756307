//! Text helpers shared by indexing and query parsing: the case- and accent-folding
//! used for string search, and FHIR's backslash escaping of `,`, `|`, `$` and `\`.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Folds text for FHIR's default string matching, which is case- and
/// accent-insensitive: canonical decomposition (NFD), combining marks dropped,
/// then lowercased. `"Müller"` and `"MULLER"` both fold to `"muller"`.
///
/// Indexing and query parsing use this one function so the two sides always agree.
pub fn fold(text: &str) -> String {
    text.nfd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Splits `text` on every `sep` that is not escaped by a backslash. The pieces keep
/// their escapes (so `\,` stays `\,` inside a piece); [`unescape`] removes them later,
/// after any further splitting (e.g. on `|` for tokens).
pub fn split_unescaped(text: &str, sep: char) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (at, c) in text.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            pieces.push(&text[start..at]);
            start = at + c.len_utf8();
        }
    }
    pieces.push(&text[start..]);
    pieces
}

/// Splits at the first unescaped `sep`, if any.
pub fn split_once_unescaped(text: &str, sep: char) -> Option<(&str, &str)> {
    let mut escaped = false;
    for (at, c) in text.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            return Some((&text[..at], &text[at + c.len_utf8()..]));
        }
    }
    None
}

/// Removes FHIR search escapes: `\x` becomes `x`. A trailing lone backslash is kept,
/// since it escapes nothing.
pub fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(next) => out.push(next),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Percent-encodes a query component for the canonical query string.
///
/// Unreserved characters and `: / , *` stay literal so self links remain readable
/// (`_include=ExplanationOfBenefit:*`, `patient=Patient/1`); everything else,
/// notably `+` (which form decoding would turn into a space), `|`, `&`, `=`, `%`,
/// `\` and all non-ASCII bytes, is encoded.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~:/,*".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_ignores_case_and_accents() {
        assert_eq!(fold("Müller"), "muller");
        assert_eq!(fold("ÉLODIE"), "elodie");
        assert_eq!(fold("Zoë Ångström"), "zoe angstrom");
        assert_eq!(fold("smith"), "smith");
    }

    #[test]
    fn splitting_respects_backslash_escapes() {
        assert_eq!(split_unescaped("a,b\\,c,d", ','), vec!["a", "b\\,c", "d"]);
        assert_eq!(split_unescaped("", ','), vec![""]);
        assert_eq!(split_once_unescaped("s\\|x|c", '|'), Some(("s\\|x", "c")));
        assert_eq!(split_once_unescaped("code", '|'), None);
        assert_eq!(unescape("b\\,c\\\\d\\"), "b,c\\d\\");
    }

    #[test]
    fn percent_encoding_protects_plus_and_pipes() {
        assert_eq!(
            percent_encode("gt2019-11-01T00:00:00+00:00"),
            "gt2019-11-01T00%3A00%3A00%2B00%3A00".replace("%3A", ":")
        );
        assert_eq!(percent_encode("http://x|y z"), "http://x%7Cy%20z");
        assert_eq!(percent_encode("é"), "%C3%A9");
    }
}
