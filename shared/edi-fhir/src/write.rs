//! A small JSON writer for the typed resources of [`crate::model`].
//!
//! serde_json's derived serialisation was the largest cost left after the
//! `Value` trees were gone (about 40 % of a conversion): it escapes every
//! key and string byte by byte and makes a write call per fragment. Here
//! keys are literals written in one copy, strings are copied whole after a
//! branch-free check that they need no escaping, and "absent" (FHIR has no
//! `null`, `[]`, `{}` or `""`) is decided per field, as
//! [`crate::json::object`] does for `Value`s. Floats still go through
//! serde_json, so numbers are written exactly as before.

use std::borrow::Cow;

/// A value written as JSON.
pub trait ToJson {
    fn write_json(&self, out: &mut String);

    /// True when the field must be left out: no value, an empty string, an
    /// empty array.
    fn is_absent(&self) -> bool {
        false
    }
}

/// `impl ToJson` for a struct: an object of its present fields, in order.
macro_rules! json_object {
    ($name:ident $(<$lt:lifetime>)? { $($field:ident => $key:literal),* $(,)? }) => {
        impl $(<$lt>)? $crate::write::ToJson for $name $(<$lt>)? {
            fn write_json(&self, out: &mut String) {
                out.push('{');
                let mut first = true;
                $(
                    if !$crate::write::ToJson::is_absent(&self.$field) {
                        if !first {
                            out.push(',');
                        }
                        first = false;
                        out.push_str(concat!("\"", $key, "\":"));
                        $crate::write::ToJson::write_json(&self.$field, out);
                    }
                )*
                let _ = first;
                out.push('}');
            }
        }
    };
}
pub(crate) use json_object;

/// The bytes JSON strings must escape: control characters, `"` and `\`.
const ESCAPE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// True when `s` can be written between quotes as it is.
fn plain(s: &str) -> bool {
    !s.bytes().any(|b| ESCAPE[usize::from(b)])
}

/// The contents of a JSON string (without the quotes), escaped as
/// serde_json escapes.
fn write_contents(out: &mut String, s: &str) {
    if plain(s) {
        out.push_str(s);
        return;
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        // Escaped bytes are ASCII, so every cut is a char boundary.
        out.push_str(s.get(start..i).unwrap_or_default());
        if escape.is_empty() {
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(s.get(start..).unwrap_or_default());
}

/// One of our constants (URLs, codes, displays) inside a string: written
/// as it is, without the escaping check.
pub fn write_constant(out: &mut String, s: &'static str) {
    debug_assert!(plain(s), "{s:?} needs escaping");
    out.push_str(s);
}

/// `"<constant><text>"`, only `text` checked for escaping.
pub fn write_prefixed_str(out: &mut String, constant: &'static str, text: &str) {
    out.push('"');
    write_constant(out, constant);
    write_contents(out, text);
    out.push('"');
}

/// One JSON string made of several parts.
pub fn write_str_parts(out: &mut String, parts: &[&str]) {
    out.push('"');
    for part in parts {
        write_contents(out, part);
    }
    out.push('"');
}

impl ToJson for str {
    fn write_json(&self, out: &mut String) {
        write_str_parts(out, &[self]);
    }

    fn is_absent(&self) -> bool {
        self.is_empty()
    }
}

impl ToJson for String {
    fn write_json(&self, out: &mut String) {
        self.as_str().write_json(out);
    }

    fn is_absent(&self) -> bool {
        self.is_empty()
    }
}

impl ToJson for Cow<'_, str> {
    fn write_json(&self, out: &mut String) {
        self.as_ref().write_json(out);
    }

    fn is_absent(&self) -> bool {
        self.is_empty()
    }
}

impl<T: ToJson + ?Sized> ToJson for &T {
    fn write_json(&self, out: &mut String) {
        (**self).write_json(out);
    }

    fn is_absent(&self) -> bool {
        (**self).is_absent()
    }
}

impl ToJson for bool {
    fn write_json(&self, out: &mut String) {
        out.push_str(if *self { "true" } else { "false" });
    }
}

impl ToJson for u64 {
    fn write_json(&self, out: &mut String) {
        let mut digits = [0u8; 20];
        let mut n = *self;
        let mut at = digits.len();
        loop {
            at -= 1;
            if let Some(d) = digits.get_mut(at) {
                *d = b'0' + (n % 10) as u8;
            }
            n /= 10;
            if n == 0 || at == 0 {
                break;
            }
        }
        for &d in digits.get(at..).unwrap_or_default() {
            out.push(char::from(d));
        }
    }
}

impl ToJson for usize {
    fn write_json(&self, out: &mut String) {
        (*self as u64).write_json(out);
    }
}

impl ToJson for f64 {
    fn write_json(&self, out: &mut String) {
        // The digits serde_json writes (`null` when not finite).
        let mut buf = [0u8; 40];
        let mut cursor = std::io::Cursor::new(&mut buf[..]);
        let written = match serde_json::to_writer(&mut cursor, self) {
            Ok(()) => usize::try_from(cursor.position()).unwrap_or(0),
            Err(_) => 0,
        };
        match buf.get(..written).map(std::str::from_utf8) {
            Some(Ok(text)) if !text.is_empty() => out.push_str(text),
            _ => out.push_str("null"),
        }
    }
}

impl<T: ToJson> ToJson for Option<T> {
    fn write_json(&self, out: &mut String) {
        match self {
            Some(v) => v.write_json(out),
            None => out.push_str("null"),
        }
    }

    fn is_absent(&self) -> bool {
        self.as_ref().is_none_or(ToJson::is_absent)
    }
}

impl<T: ToJson> ToJson for [T] {
    fn write_json(&self, out: &mut String) {
        out.push('[');
        for (i, v) in self.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            v.write_json(out);
        }
        out.push(']');
    }

    fn is_absent(&self) -> bool {
        self.is_empty()
    }
}

impl<T: ToJson, const N: usize> ToJson for [T; N] {
    fn write_json(&self, out: &mut String) {
        self.as_slice().write_json(out);
    }

    fn is_absent(&self) -> bool {
        N == 0
    }
}

impl<T: ToJson> ToJson for Vec<T> {
    fn write_json(&self, out: &mut String) {
        self.as_slice().write_json(out);
    }

    fn is_absent(&self) -> bool {
        self.is_empty()
    }
}

/// The directory resources, still built as `Value`s.
impl ToJson for serde_json::Value {
    fn write_json(&self, out: &mut String) {
        out.push_str(&self.to_string());
    }

    fn is_absent(&self) -> bool {
        crate::json::is_empty(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json<T: ToJson + ?Sized>(v: &T) -> String {
        let mut out = String::new();
        v.write_json(&mut out);
        out
    }

    #[test]
    fn strings_escape_as_serde_json_does() {
        for s in [
            "plain",
            "",
            "quote \" and back\\slash",
            "tab\tnew\nline\r\u{1}\u{1f}\u{8}\u{c}",
            "é ✓ 𝄞",
        ] {
            assert_eq!(json(s), serde_json::to_string(s).unwrap_or_default());
        }
    }

    #[test]
    fn numbers_match_serde_json() {
        for n in [0u64, 7, 10, 1234567890, u64::MAX] {
            assert_eq!(json(&n), n.to_string());
        }
        for f in [0.0, 1.0, 12.5, -60.0, 100.01, 1e21] {
            assert_eq!(json(&f), serde_json::to_string(&f).unwrap_or_default());
        }
    }

    struct Sample<'a> {
        a: Option<&'a str>,
        b: Vec<u64>,
        c: &'a str,
        d: bool,
    }
    json_object!(Sample<'a> { a => "a", b => "b", c => "c", d => "d" });

    #[test]
    fn absent_fields_are_left_out() {
        let s = Sample {
            a: None,
            b: Vec::new(),
            c: "",
            d: false,
        };
        assert_eq!(json(&s), r#"{"d":false}"#);
        let s = Sample {
            a: Some("x"),
            b: vec![1, 2],
            c: "y",
            d: true,
        };
        assert_eq!(json(&s), r#"{"a":"x","b":[1,2],"c":"y","d":true}"#);
    }
}
