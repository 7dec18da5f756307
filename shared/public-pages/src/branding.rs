//! The plan's branding: name, logo, colours and contact details.
//!
//! Every public page is one template filled from a [`Branding`], so a plan rebrands by
//! configuration alone. Colours are checked when the branding is built, not when a page
//! is drawn: a colour that would make text unreadable (WCAG 2.1 AA, 1.4.3 and 1.4.11)
//! is refused at start-up, so no misconfiguration can ship an inaccessible page.

use std::fmt;
use std::path::Path;

use serde::Deserialize;

/// Text drawn in the primary colour, or white text on it, needs this ratio (WCAG 1.4.3).
pub const MIN_TEXT_CONTRAST: f64 = 4.5;
/// The accent colour only draws focus rings and borders, which need 3:1 (WCAG 1.4.11).
pub const MIN_NON_TEXT_CONTRAST: f64 = 3.0;

/// Pages are drawn on this background, with this text colour on the primary colour.
const WHITE: Color = Color {
    red: 0xff,
    green: 0xff,
    blue: 0xff,
};

/// Why a branding setting was refused. Shown to the operator at start-up.
#[derive(Debug, thiserror::Error)]
pub enum BrandingError {
    #[error("{field} must be a colour like #1d4f91, not {value:?}")]
    InvalidColor { field: &'static str, value: String },
    #[error(
        "{field} {color} has contrast {ratio:.2}:1 against white; at least {required}:1 is needed"
    )]
    LowContrast {
        field: &'static str,
        color: Color,
        ratio: f64,
        required: f64,
    },
    #[error("{field} must not be empty")]
    Empty { field: &'static str },
    #[error("{field} is too long (at most {max} characters)")]
    TooLong { field: &'static str, max: usize },
    #[error("PLAN_LOGO_URL must be an https:// URL or a path starting with /, not {0:?}")]
    InvalidLogoUrl(String),
    #[error("PLAN_CONTACT_EMAIL must look like name@domain, not {0:?}")]
    InvalidEmail(String),
    #[error("PLAN_CONTACT_PHONE must contain digits and only + - ( ) . and spaces, not {0:?}")]
    InvalidPhone(String),
    #[error("branding file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("branding file {path}: {source}")]
    Parse {
        path: String,
        source: serde_json::Error,
    },
}

/// An sRGB colour, written `#rrggbb`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Color {
    red: u8,
    green: u8,
    blue: u8,
}

impl Color {
    /// Parses `#rrggbb` or `#rgb`; nothing else, so a value can never smuggle CSS.
    pub fn parse(field: &'static str, text: &str) -> Result<Color, BrandingError> {
        let invalid = || BrandingError::InvalidColor {
            field,
            value: text.to_owned(),
        };
        let hex = text.trim().strip_prefix('#').ok_or_else(invalid)?;
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid());
        }
        let channel = |s: &str| u8::from_str_radix(s, 16).map_err(|_| invalid());
        match hex.len() {
            6 => Ok(Color {
                red: channel(&hex[0..2])?,
                green: channel(&hex[2..4])?,
                blue: channel(&hex[4..6])?,
            }),
            3 => {
                let short = |i: usize| channel(&hex[i..=i]).map(|v| v * 17);
                Ok(Color {
                    red: short(0)?,
                    green: short(1)?,
                    blue: short(2)?,
                })
            }
            _ => Err(invalid()),
        }
    }

    /// WCAG 2.1 relative luminance.
    fn luminance(self) -> f64 {
        let linear = |channel: u8| {
            let c = f64::from(channel) / 255.0;
            if c <= 0.040_45 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * linear(self.red) + 0.7152 * linear(self.green) + 0.0722 * linear(self.blue)
    }

    /// WCAG 2.1 contrast ratio, from 1 (none) to 21 (black on white).
    pub fn contrast(self, other: Color) -> f64 {
        let (a, b) = (self.luminance(), other.luminance());
        let (light, dark) = if a > b { (a, b) } else { (b, a) };
        (light + 0.05) / (dark + 0.05)
    }

    fn require_contrast(self, field: &'static str, required: f64) -> Result<Color, BrandingError> {
        let ratio = self.contrast(WHITE);
        if ratio < required {
            return Err(BrandingError::LowContrast {
                field,
                color: self,
                ratio,
                required,
            });
        }
        Ok(self)
    }
}

impl fmt::Display for Color {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{:02x}{:02x}{:02x}", self.red, self.green, self.blue)
    }
}

/// How the pages name and present the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Branding {
    pub plan_name: String,
    /// `https://…` or a same-origin path; `None` shows the name alone.
    pub logo_url: Option<String>,
    /// Header background (white text on it) and link colour (on white).
    pub primary_color: Color,
    /// Focus rings and borders.
    pub accent_color: Color,
    pub contact_phone: String,
    pub contact_email: String,
}

impl Default for Branding {
    /// A neutral example plan whose colours pass AA; real plans override every field.
    fn default() -> Self {
        Branding {
            plan_name: "Example Health Plan".to_owned(),
            logo_url: None,
            primary_color: Color {
                red: 0x1d,
                green: 0x4f,
                blue: 0x91,
            },
            accent_color: Color {
                red: 0xc0,
                green: 0x56,
                blue: 0x00,
            },
            contact_phone: "1-800-555-0100".to_owned(),
            contact_email: "privacy@example.org".to_owned(),
        }
    }
}

/// Branding settings as written in `branding.json` or the environment: every field
/// optional, each one given overrides the default.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrandingSettings {
    pub plan_name: Option<String>,
    pub logo_url: Option<String>,
    pub primary_color: Option<String>,
    pub accent_color: Option<String>,
    pub contact_phone: Option<String>,
    pub contact_email: Option<String>,
}

/// Longest plan name, phone or email we accept: they sit in a header on a phone.
const MAX_TEXT: usize = 120;

impl BrandingSettings {
    /// `PLAN_NAME`, `PLAN_LOGO_URL`, `PLAN_PRIMARY_COLOR`, `PLAN_ACCENT_COLOR`,
    /// `PLAN_CONTACT_PHONE`, `PLAN_CONTACT_EMAIL` (set by template.yaml on Lambda).
    /// Empty variables count as unset, so a template parameter left blank means default.
    pub fn from_env() -> BrandingSettings {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the same names through `lookup`, so tests need not touch the process
    /// environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> BrandingSettings {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        BrandingSettings {
            plan_name: get("PLAN_NAME"),
            logo_url: get("PLAN_LOGO_URL"),
            primary_color: get("PLAN_PRIMARY_COLOR"),
            accent_color: get("PLAN_ACCENT_COLOR"),
            contact_phone: get("PLAN_CONTACT_PHONE"),
            contact_email: get("PLAN_CONTACT_EMAIL"),
        }
    }

    /// Reads a `branding.json` (the local runner's data directory). A missing file is
    /// no settings at all: the defaults.
    pub fn from_file(path: &Path) -> Result<BrandingSettings, BrandingError> {
        let shown = path.display().to_string();
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| BrandingError::Parse {
                path: shown,
                source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BrandingSettings::default()),
            Err(source) => Err(BrandingError::Read {
                path: shown,
                source,
            }),
        }
    }

    /// The branding these settings describe, every field checked.
    pub fn build(self) -> Result<Branding, BrandingError> {
        let defaults = Branding::default();
        let primary_color = match self.primary_color {
            Some(text) => Color::parse("PLAN_PRIMARY_COLOR", &text)?,
            None => defaults.primary_color,
        };
        let accent_color = match self.accent_color {
            Some(text) => Color::parse("PLAN_ACCENT_COLOR", &text)?,
            None => defaults.accent_color,
        };
        Ok(Branding {
            plan_name: text("PLAN_NAME", self.plan_name, defaults.plan_name)?,
            logo_url: self.logo_url.map(logo_url).transpose()?,
            primary_color: primary_color
                .require_contrast("PLAN_PRIMARY_COLOR", MIN_TEXT_CONTRAST)?,
            accent_color: accent_color
                .require_contrast("PLAN_ACCENT_COLOR", MIN_NON_TEXT_CONTRAST)?,
            contact_phone: phone(text(
                "PLAN_CONTACT_PHONE",
                self.contact_phone,
                defaults.contact_phone,
            )?)?,
            contact_email: email(text(
                "PLAN_CONTACT_EMAIL",
                self.contact_email,
                defaults.contact_email,
            )?)?,
        })
    }
}

impl Branding {
    /// The phone number as a `tel:` URI: digits and a leading `+` only.
    pub fn phone_uri(&self) -> String {
        let digits: String = self
            .contact_phone
            .chars()
            .filter(|c| c.is_ascii_digit() || *c == '+')
            .collect();
        format!("tel:{digits}")
    }
}

fn text(
    field: &'static str,
    value: Option<String>,
    default: String,
) -> Result<String, BrandingError> {
    let value = value.map_or(default, |v| v.trim().to_owned());
    if value.is_empty() {
        return Err(BrandingError::Empty { field });
    }
    if value.chars().count() > MAX_TEXT {
        return Err(BrandingError::TooLong {
            field,
            max: MAX_TEXT,
        });
    }
    Ok(value)
}

/// Only `https://` or same-origin paths: a `javascript:` or `data:` URL in an `<img>`
/// is refused outright, and the CSP allows no other image sources.
fn logo_url(url: String) -> Result<String, BrandingError> {
    let url = url.trim().to_owned();
    let same_origin = url.starts_with('/') && !url.starts_with("//");
    let ok = (url.starts_with("https://") || same_origin)
        && !url.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(url)
    } else {
        Err(BrandingError::InvalidLogoUrl(url))
    }
}

fn email(value: String) -> Result<String, BrandingError> {
    let ok = match value.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.contains('@')
                && !value.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    };
    if ok {
        Ok(value)
    } else {
        Err(BrandingError::InvalidEmail(value))
    }
}

fn phone(value: String) -> Result<String, BrandingError> {
    let allowed = |c: char| c.is_ascii_digit() || " +-().".contains(c);
    if value.chars().all(allowed) && value.chars().any(|c| c.is_ascii_digit()) {
        Ok(value)
    } else {
        Err(BrandingError::InvalidPhone(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_their_own_checks() {
        let built = BrandingSettings::default().build();
        assert_eq!(built.ok(), Some(Branding::default()));
    }

    #[test]
    fn colours_parse_long_and_short_forms_and_nothing_else() {
        assert_eq!(
            Color::parse("x", "#1D4f91").map(|c| c.to_string()).ok(),
            Some("#1d4f91".to_owned())
        );
        assert_eq!(
            Color::parse("x", "#fff").map(|c| c.to_string()).ok(),
            Some("#ffffff".to_owned())
        );
        for bad in ["1d4f91", "#1d4f9", "#1d4f91;}", "red", "#ggg", "#+1+2+3"] {
            assert!(Color::parse("x", bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn contrast_matches_wcag_reference_values() {
        let black = Color {
            red: 0,
            green: 0,
            blue: 0,
        };
        assert!((black.contrast(WHITE) - 21.0).abs() < 1e-9);
        assert!((WHITE.contrast(WHITE) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn low_contrast_colours_are_refused() {
        let settings = BrandingSettings {
            primary_color: Some("#ffbe2e".to_owned()),
            ..BrandingSettings::default()
        };
        assert!(matches!(
            settings.build(),
            Err(BrandingError::LowContrast {
                field: "PLAN_PRIMARY_COLOR",
                ..
            })
        ));
        let settings = BrandingSettings {
            accent_color: Some("#f0f4f8".to_owned()),
            ..BrandingSettings::default()
        };
        assert!(matches!(
            settings.build(),
            Err(BrandingError::LowContrast {
                field: "PLAN_ACCENT_COLOR",
                ..
            })
        ));
    }

    #[test]
    fn environment_names_are_read_and_blank_means_default() {
        let settings = BrandingSettings::from_lookup(|name| match name {
            "PLAN_NAME" => Some("Acme Health".to_owned()),
            "PLAN_CONTACT_EMAIL" => Some("  ".to_owned()),
            _ => None,
        });
        let branding = settings.build().ok();
        assert_eq!(
            branding.as_ref().map(|b| b.plan_name.as_str()),
            Some("Acme Health")
        );
        assert_eq!(
            branding.map(|b| b.contact_email),
            Some("privacy@example.org".to_owned())
        );
    }

    #[test]
    fn unsafe_logo_urls_emails_and_phones_are_refused() {
        for url in [
            "javascript:alert(1)",
            "data:image/png;base64,AA",
            "//evil.example/x.png",
            "http://x/y.png",
        ] {
            let settings = BrandingSettings {
                logo_url: Some(url.to_owned()),
                ..BrandingSettings::default()
            };
            assert!(settings.build().is_err(), "{url} accepted");
        }
        let settings = BrandingSettings {
            contact_email: Some("not an email".to_owned()),
            ..BrandingSettings::default()
        };
        assert!(matches!(
            settings.build(),
            Err(BrandingError::InvalidEmail(_))
        ));
        let settings = BrandingSettings {
            contact_phone: Some("call <us>".to_owned()),
            ..BrandingSettings::default()
        };
        assert!(matches!(
            settings.build(),
            Err(BrandingError::InvalidPhone(_))
        ));
    }

    #[test]
    fn phone_uri_keeps_digits_and_plus() {
        let branding = Branding {
            contact_phone: "+1 (800) 555-0100".to_owned(),
            ..Branding::default()
        };
        assert_eq!(branding.phone_uri(), "tel:+18005550100");
    }

    #[test]
    fn unknown_fields_in_branding_json_are_an_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("branding.json");
        std::fs::write(&path, r#"{"plan_nmae": "typo"}"#).expect("write");
        assert!(matches!(
            BrandingSettings::from_file(&path),
            Err(BrandingError::Parse { .. })
        ));
        let missing = BrandingSettings::from_file(&dir.path().join("none.json"));
        assert!(missing.is_ok_and(|s| s.plan_name.is_none()));
    }
}
