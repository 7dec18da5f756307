//! The member-id look-up: every stored Coverage's member and subscriber ids, as
//! look-up terms, so Payer-to-Payer `$member-match` finds the Coverages that carry a
//! card's number with one Query (never a Scan), whatever the number of members.
//!
//! Like the roster ([`crate::roster`]), the entry is part of the Coverage's own search
//! index, so the store writes and removes it in the same transaction as the Coverage.
//! Coverages stored before this rule have no entry until they are written again.

/// The look-up parameter (not a search parameter: searches cannot name it).
pub const PARAM: &str = "_member-id";

/// The longest member id kept (after normalising); longer values are not ids.
const MAX_LEN: usize = 64;

/// A member or subscriber id as compared: ASCII letters upper-cased, digits kept,
/// everything else (spaces, hyphens, dots, slashes) dropped, so `"abc-123 45"` and
/// `"ABC12345"` agree. `None` when nothing is left, when the value holds letters
/// outside ASCII (no card number does), or when it is longer than 64.
pub fn normalise(value: &str) -> Option<String> {
    if value.chars().any(|c| c.is_alphanumeric() && !c.is_ascii()) {
        return None;
    }
    let kept: String = value
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (!kept.is_empty() && kept.len() <= MAX_LEN).then_some(kept)
}

/// The look-up term of a normalised id. The trailing `.` ends the term, so a Query
/// for the prefix `M123.` finds `M123` and never `M1234`: the look-up is an exact key.
pub fn term(normalised: &str) -> String {
    format!("{normalised}.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_compared_without_case_spaces_or_punctuation() {
        assert_eq!(normalise(" abc-123 45 ").as_deref(), Some("ABC12345"));
        assert_eq!(normalise("ABC12345"), normalise("abc.123/45"));
        assert_eq!(normalise("--"), None);
        assert_eq!(normalise("Ä123"), None);
        assert_eq!(normalise(&"1".repeat(65)), None);
        assert_eq!(term("M123"), "M123.");
        assert!(!term("M1234").starts_with(&term("M123")));
    }
}
