//! Normalizing what members type before it is compared with the plan's records.
//!
//! People write the same fact many ways: `03/07/1984`, `1984-03-07`; `dh 0001-23456`;
//! `43215-1234`. Each is reduced to one canonical form, and a value that cannot be read
//! becomes `None`, which never equals anything on file.

/// A date of birth as `YYYY-MM-DD`, from `YYYY-MM-DD`, `YYYY/MM/DD`, `MM/DD/YYYY`,
/// `M/D/YYYY`, `MM-DD-YYYY`, `YYYYMMDD` or `MMDDYYYY`.
pub fn birth_date(input: &str) -> Option<String> {
    let text: String = input.chars().filter(|c| !c.is_whitespace()).collect();
    let (year, month, day) = if text.contains(['/', '-', '.']) {
        let parts: Vec<&str> = text.split(['/', '-', '.']).collect();
        match parts.as_slice() {
            [y, m, d] if y.len() == 4 => (*y, *m, *d),
            [m, d, y] if y.len() == 4 => (*y, *m, *d),
            _ => return None,
        }
    } else if text.len() == 8 && text.is_ascii() {
        // Year first when it reads as a plausible year, else US month-day-year.
        if text.starts_with("19") || text.starts_with("20") {
            (&text[..4], &text[4..6], &text[6..])
        } else {
            (&text[4..], &text[..2], &text[2..4])
        }
    } else {
        return None;
    };
    let number = |s: &str, max_len: usize| -> Option<u32> {
        (!s.is_empty() && s.len() <= max_len && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())?
    };
    let (year, month, day) = (number(year, 4)?, number(month, 2)?, number(day, 2)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || year < 1000 {
        return None;
    }
    Some(format!("{year:04}-{month:02}-{day:02}"))
}

/// A member id without spaces or dashes, upper case: `dh 0001-23456` → `DH000123456`.
pub fn member_id(input: &str) -> Option<String> {
    let id: String = input
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_uppercase)
        .collect();
    (!id.is_empty()).then_some(id)
}

/// The five-digit ZIP code of a ZIP or ZIP+4 (`43215`, `43215-1234`, `432151234`).
pub fn zip5(input: &str) -> Option<String> {
    let digits: String = input
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    let all_digits = digits.bytes().all(|b| b.is_ascii_digit());
    (all_digits && (digits.len() == 5 || digits.len() == 9)).then(|| digits[..5].to_owned())
}

/// An email with most of its local part hidden: `maria.garcia@example.com` →
/// `m***@example.com`. Enough for members to recognise their address, too little to
/// learn it.
pub fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) if !local.is_empty() && !domain.is_empty() => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        _ => "***".to_owned(),
    }
}

/// Emails compare case-insensitively and without surrounding spaces.
pub fn email(input: &str) -> String {
    input.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_of_birth_in_common_formats_agree() {
        for input in [
            "1984-03-07",
            "03/07/1984",
            "3/7/1984",
            "03-07-1984",
            "19840307",
            "03071984",
            " 1984/03/07 ",
        ] {
            assert_eq!(birth_date(input).as_deref(), Some("1984-03-07"), "{input}");
        }
        for input in [
            "",
            "1984-13-07",
            "84-03-07",
            "07.03",
            "abcdefgh",
            "1984-03-07-01",
            "１９８４0307",
        ] {
            assert_eq!(birth_date(input), None, "{input}");
        }
    }

    #[test]
    fn member_ids_ignore_case_spaces_and_dashes() {
        assert_eq!(member_id(" dh 0001-23456 ").as_deref(), Some("DH000123456"));
        assert_eq!(member_id("  "), None);
    }

    #[test]
    fn zip_plus_four_reduces_to_zip5() {
        assert_eq!(zip5("43215").as_deref(), Some("43215"));
        assert_eq!(zip5("43215-1234").as_deref(), Some("43215"));
        assert_eq!(zip5("432151234").as_deref(), Some("43215"));
        assert_eq!(zip5("4321"), None);
        assert_eq!(zip5("4321a"), None);
    }

    #[test]
    fn masked_emails_keep_only_the_first_letter_and_domain() {
        assert_eq!(mask_email("maria.garcia@example.com"), "m***@example.com");
        assert_eq!(mask_email("broken"), "***");
    }
}
