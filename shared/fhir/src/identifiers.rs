//! US provider identifiers, checked where they enter (registrations, attribution files).

/// An NPI: 10 digits whose Luhn check digit, computed with the `80840` card-issuer
/// prefix (45 CFR 162.406), holds.
pub fn is_valid_npi(npi: &str) -> bool {
    if npi.len() != 10 || !npi.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let mut sum = 0;
    for (i, b) in "80840".bytes().chain(npi.bytes()).rev().enumerate() {
        let mut d = u32::from(b - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum % 10 == 0
}

/// A TIN (EIN or SSN form): 9 digits, no punctuation.
pub fn is_valid_tin(tin: &str) -> bool {
    tin.len() == 9 && tin.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npis_carry_a_luhn_check_digit_and_tins_are_nine_digits() {
        assert!(is_valid_npi("1234567893"));
        assert!(!is_valid_npi("1234567890"));
        assert!(!is_valid_npi("123456789"));
        assert!(is_valid_tin("123456789"));
        assert!(!is_valid_tin("12-3456789"));
    }
}
