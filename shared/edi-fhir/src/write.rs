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
    fn write_json(&self, out: &mut Vec<u8>);

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
            fn write_json(&self, out: &mut Vec<u8>) {
                out.push(b'{');
                let mut first = true;
                $(
                    if !$crate::write::ToJson::is_absent(&self.$field) {
                        if !first {
                            out.push(b',');
                        }
                        first = false;
                        out.extend_from_slice(concat!("\"", $key, "\":").as_bytes());
                        $crate::write::ToJson::write_json(&self.$field, out);
                    }
                )*
                let _ = first;
                out.push(b'}');
            }
        }
    };
}
pub(crate) use json_object;

/// True when `s` can be written between quotes as it is.
fn plain(s: &str) -> bool {
    // No early exit: this vectorises, and strings are short.
    !s.bytes().fold(false, |bad, b| {
        bad | (b < 0x20) | (b == b'"') | (b == b'\\')
    })
}

/// The contents of a JSON string (without the quotes), escaped as
/// serde_json escapes.
fn write_contents(out: &mut Vec<u8>, s: &str) {
    if plain(s) {
        out.extend_from_slice(s.as_bytes());
        return;
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => &[],
            _ => continue,
        };
        out.extend_from_slice(s.as_bytes().get(start..i).unwrap_or_default());
        if escape.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0x0f)]);
        } else {
            out.extend_from_slice(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(s.as_bytes().get(start..).unwrap_or_default());
}

/// One of our constants (URLs, codes, displays) inside a string: written
/// as it is, without the escaping check.
pub fn write_constant(out: &mut Vec<u8>, s: &'static str) {
    debug_assert!(plain(s), "{s:?} needs escaping");
    out.extend_from_slice(s.as_bytes());
}

/// One JSON string made of several parts.
pub fn write_str_parts(out: &mut Vec<u8>, parts: &[&str]) {
    out.push(b'"');
    for part in parts {
        write_contents(out, part);
    }
    out.push(b'"');
}

impl ToJson for str {
    fn write_json(&self, out: &mut Vec<u8>) {
        write_str_parts(out, &[self]);
    }

    fn is_absent(&self) -> bool {
        self.is_empty()
    }
}

impl ToJson for String {
    fn write_json(&self, out: &mut Vec<u8>) {
        self.as_str().write_json(out);
    }

    fn is_absent(&self) -> bool {
        self.is_empty()
    }
}

impl ToJson for Cow<'_, str> {
    fn write_json(&self, out: &mut Vec<u8>) {
        self.as_ref().write_json(out);
    }

    fn is_absent(&self) -> bool {
        self.is_empty()
    }
}

impl<T: ToJson + ?Sized> ToJson for &T {
    fn write_json(&self, out: &mut Vec<u8>) {
        (**self).write_json(out);
    }

    fn is_absent(&self) -> bool {
        (**self).is_absent()
    }
}

impl ToJson for bool {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(if *self { b"true" } else { b"false" });
    }
}

impl ToJson for u64 {
    fn write_json(&self, out: &mut Vec<u8>) {
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
        out.extend_from_slice(digits.get(at..).unwrap_or_default());
    }
}

impl ToJson for usize {
    fn write_json(&self, out: &mut Vec<u8>) {
        (*self as u64).write_json(out);
    }
}

impl ToJson for f64 {
    fn write_json(&self, out: &mut Vec<u8>) {
        // The same digits as before (and `null` for a non-finite value, as
        // serde_json writes it).
        if serde_json::to_writer(&mut *out, self).is_err() {
            out.extend_from_slice(b"null");
        }
    }
}

impl<T: ToJson> ToJson for Option<T> {
    fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            Some(v) => v.write_json(out),
            None => out.extend_from_slice(b"null"),
        }
    }

    fn is_absent(&self) -> bool {
        self.as_ref().is_none_or(ToJson::is_absent)
    }
}

impl<T: ToJson> ToJson for [T] {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'[');
        for (i, v) in self.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            v.write_json(out);
        }
        out.push(b']');
    }

    fn is_absent(&self) -> bool {
        self.is_empty()
    }
}

impl<T: ToJson, const N: usize> ToJson for [T; N] {
    fn write_json(&self, out: &mut Vec<u8>) {
        self.as_slice().write_json(out);
    }

    fn is_absent(&self) -> bool {
        N == 0
    }
}

impl<T: ToJson> ToJson for Vec<T> {
    fn write_json(&self, out: &mut Vec<u8>) {
        self.as_slice().write_json(out);
    }

    fn is_absent(&self) -> bool {
        self.is_empty()
    }
}

/// The directory resources, still built as `Value`s.
impl ToJson for serde_json::Value {
    fn write_json(&self, out: &mut Vec<u8>) {
        if serde_json::to_writer(&mut *out, self).is_err() {
            out.extend_from_slice(b"null");
        }
    }

    fn is_absent(&self) -> bool {
        crate::json::is_empty(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json<T: ToJson + ?Sized>(v: &T) -> String {
        let mut out = Vec::new();
        v.write_json(&mut out);
        String::from_utf8(out).unwrap_or_default()
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
