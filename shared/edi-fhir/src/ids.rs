//! Deterministic resource ids from business identifiers.
//!
//! Re-ingesting a file must produce the same ids, and two files that talk
//! about the same member, provider or claim must land on the same resource,
//! so every id is a pure function of identifiers that X12 carries. Readable
//! ids (`org-npi-1234567893`) are used when the identifier is already a valid
//! FHIR id fragment; anything else (spaces, punctuation, long keys, several
//! parts) is hashed with SHA-256 so that distinct keys can never collide by
//! sanitising (`A B` and `A-B` stay different).

use sha2::{Digest, Sha256};

/// Longest FHIR logical id.
const MAX_ID: usize = 64;

/// `prefix-value` when that is a valid FHIR id, else `prefix-<hash(value)>`.
pub fn readable_id(prefix: &str, value: &str) -> String {
    let valid = !value.is_empty()
        && prefix.len() + 1 + value.len() <= MAX_ID
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if valid {
        let mut id = String::with_capacity(prefix.len() + 1 + value.len());
        id.push_str(prefix);
        id.push('-');
        id.push_str(value);
        id
    } else {
        key_id(prefix, &[value])
    }
}

/// `prefix-<32 hex digits>` from the SHA-256 of the parts (unit-separated, so
/// `["ab", "c"]` and `["a", "bc"]` differ).
pub fn key_id(prefix: &str, parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            hasher.update([0x1f]);
        }
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    let mut id = String::with_capacity(prefix.len() + 33);
    id.push_str(prefix);
    id.push('-');
    for byte in digest.iter().take(16) {
        push_hex(&mut id, *byte);
    }
    id
}

fn push_hex(out: &mut String, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(char::from(HEX[usize::from(byte >> 4)]));
    out.push(char::from(HEX[usize::from(byte & 0x0f)]));
}

/// The plan's payer Organization.
pub fn payer_org(payer_id: &str) -> String {
    readable_id("org-payer", payer_id)
}

/// A provider Organization keyed by NPI, else TIN, else name.
pub fn provider_org(npi: Option<&str>, tin: Option<&str>, name: &str) -> String {
    match (npi, tin) {
        (Some(npi), _) => readable_id("org-npi", npi),
        (None, Some(tin)) => readable_id("org-tin", tin),
        (None, None) => key_id("org-name", &[name]),
    }
}

/// A Practitioner keyed by NPI, else name.
pub fn practitioner(npi: Option<&str>, family: &str, given: &str) -> String {
    match npi {
        Some(npi) => readable_id("practitioner-npi", npi),
        None => key_id("practitioner-name", &[family, given]),
    }
}

/// Who a member is, as far as ids go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberKey<'a> {
    /// The subscriber: their own member id.
    Subscriber { member_id: &'a str },
    /// A dependent: 5010 837s and many 834s/835s give dependents no id of their
    /// own, so they are keyed on the subscriber's id plus their first name
    /// (the DOB is not in 835s; first names are unique within a family in
    /// practice).
    Dependent {
        subscriber_id: &'a str,
        given: &'a str,
    },
}

impl MemberKey<'_> {
    /// The part of the Patient id after `patient-`.
    fn suffix(&self, payer_id: &str) -> String {
        match self {
            MemberKey::Subscriber { member_id } => {
                let readable = format!("{payer_id}-{member_id}");
                if !member_id.is_empty()
                    && readable.len() + "patient-".len() <= MAX_ID
                    && is_fragment(&readable)
                {
                    readable
                } else {
                    key_tail(&["subscriber", payer_id, member_id])
                }
            }
            MemberKey::Dependent {
                subscriber_id,
                given,
            } => key_tail(&[
                "dependent",
                payer_id,
                subscriber_id,
                &given.trim().to_ascii_uppercase(),
            ]),
        }
    }
}

fn key_tail(parts: &[&str]) -> String {
    let id = key_id("k", parts);
    id.get(2..).unwrap_or_default().to_owned()
}

fn is_fragment(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// `patient-<payer>-<memberid>` for subscribers, a hash for dependents.
pub fn patient(payer_id: &str, member: &MemberKey<'_>) -> String {
    format!("patient-{}", member.suffix(payer_id))
}

/// One Coverage per member and coverage line (medical, dental, vision,
/// pharmacy): an 837P/I names the medical line, an 837D the dental one, an
/// 834 HD03 any of them, so a claim and an enrolment meet on one Coverage.
pub fn coverage(payer_id: &str, member: &MemberKey<'_>, line: &str) -> String {
    let suffix = member.suffix(payer_id);
    readable_id("coverage", &format!("{suffix}-{line}"))
}

/// The claim key; see the crate docs ("EOB identity").
pub fn eob(payer_id: &str, provider_key: &str, patient_control_number: &str) -> String {
    key_id("eob", &[payer_id, provider_key, patient_control_number])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readable_when_valid_hashed_otherwise() {
        assert_eq!(readable_id("org-npi", "1234567893"), "org-npi-1234567893");
        let hashed = readable_id("org-npi", "12 34");
        assert!(hashed.starts_with("org-npi-") && hashed.len() == 8 + 32);
        assert_ne!(readable_id("x", "A B"), readable_id("x", "A-B"));
        assert_ne!(key_id("k", &["ab", "c"]), key_id("k", &["a", "bc"]));
    }

    #[test]
    fn every_id_is_a_valid_fhir_id() {
        let long = "X".repeat(100);
        let sub = MemberKey::Subscriber { member_id: &long };
        let dep = MemberKey::Dependent {
            subscriber_id: "JS001",
            given: "TED",
        };
        for id in [
            patient("999996666", &sub),
            patient("999996666", &dep),
            coverage("999996666", &sub, "medical"),
            coverage("999996666", &dep, "dental"),
            eob("999996666", "npi:9876543210", "26463774"),
            payer_org("99 99"),
        ] {
            assert!(fhir::is_valid_id(&id), "{id}");
        }
        let sub = MemberKey::Subscriber {
            member_id: "JS00111223333",
        };
        assert_eq!(
            patient("999996666", &sub),
            "patient-999996666-JS00111223333"
        );
    }
}
