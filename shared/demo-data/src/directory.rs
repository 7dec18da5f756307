//! The shared directory: the health plan (payer), a second carrier for coordination of
//! benefits, the billing provider organisations and the practitioners on care teams.
//!
//! The directory is fixed, not random: every seed and member count sees the same
//! organisations and practitioners, so references into it are stable test fixtures.
//! Their ids are the ones the X12 path gives them ([`edi_fhir::ids`]: by payer id, by
//! NPI), so a provider named in the demo's 837s is the same resource here.

use fhir::ResourceType;
use serde_json::{Value, json};

use crate::date::Date;
use crate::elements::{Code, concept, meta, typed_identifier};
use fhir::systems::{
    C4BB_IDENTIFIER_TYPE, NAIC, NPI, NUCC_TAXONOMY, ORGANIZATION_TYPE, PLAN_PAYER_ID, TAX_ID,
    V2_0203,
};

/// What an organisation does, which decides the claims it can bill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OrgRole {
    Payer,
    Hospital,
    PhysicianGroup,
    DentalPractice,
    Pharmacy,
}

#[derive(Debug)]
pub(crate) struct Organization {
    pub name: &'static str,
    pub role: OrgRole,
    /// Payers only: the id they are known by in X12 (N1*PR, NM1*PR).
    pub payer_id: &'static str,
    /// The first nine NPI digits; the Luhn check digit is computed. Payers have none.
    pub npi_base: &'static str,
    pub tin: &'static str,
    pub street: &'static str,
    pub city: &'static str,
    pub state: &'static str,
    pub postal_code: &'static str,
}

#[derive(Debug)]
pub(crate) struct Practitioner {
    pub family: &'static str,
    pub given: &'static str,
    pub suffix: &'static str,
    pub npi_base: &'static str,
    pub taxonomy: Code,
    pub dentist: bool,
}

const fn org(
    name: &'static str,
    role: OrgRole,
    npi_base: &'static str,
    tin: &'static str,
    address: (&'static str, &'static str, &'static str, &'static str),
) -> Organization {
    let (street, city, state, postal_code) = address;
    Organization {
        name,
        role,
        payer_id: "",
        npi_base,
        tin,
        street,
        city,
        state,
        postal_code,
    }
}

/// The plan that insures every member and adjudicates every claim.
pub(crate) const PAYER: Organization = Organization {
    payer_id: crate::PAYER_ID,
    ..org(
        crate::PAYER_NAME,
        OrgRole::Payer,
        "",
        "860000001",
        ("100 Plan Way", "Columbus", "OH", "43215"),
    )
};

/// A second carrier some members also hold: shown on EOBs as non-focal insurance.
pub(crate) const SECONDARY_PAYER: Organization = Organization {
    payer_id: "LMI01",
    ..org(
        "Lakeside Mutual Insurance",
        OrgRole::Payer,
        "",
        "860000002",
        ("2 Harbor Street", "Cleveland", "OH", "44114"),
    )
};

pub(crate) const PROVIDERS: &[Organization] = &[
    org(
        "Riverside General Hospital",
        OrgRole::Hospital,
        "184300001",
        "311000001",
        ("500 River Road", "Columbus", "OH", "43210"),
    ),
    org(
        "St. Brigid Medical Center",
        OrgRole::Hospital,
        "184300002",
        "311000002",
        ("77 Abbey Lane", "Dayton", "OH", "45402"),
    ),
    org(
        "Maple Family Physicians",
        OrgRole::PhysicianGroup,
        "184300003",
        "311000003",
        ("12 Maple Avenue", "Columbus", "OH", "43201"),
    ),
    org(
        "Northside Specialty Group",
        OrgRole::PhysicianGroup,
        "184300004",
        "311000004",
        ("940 North High Street", "Columbus", "OH", "43214"),
    ),
    org(
        "Bright Smile Dental",
        OrgRole::DentalPractice,
        "184300005",
        "311000005",
        ("31 Elm Street", "Westerville", "OH", "43081"),
    ),
    org(
        "Corner Drug Pharmacy",
        OrgRole::Pharmacy,
        "184300006",
        "311000006",
        ("8 Main Street", "Dublin", "OH", "43017"),
    ),
    org(
        "Valley Mail Order Pharmacy",
        OrgRole::Pharmacy,
        "184300007",
        "311000007",
        ("1600 Commerce Drive", "Cincinnati", "OH", "45202"),
    ),
];

const fn taxonomy(code: &'static str, display: &'static str) -> Code {
    Code::new(NUCC_TAXONOMY, code, display)
}

const fn practitioner(
    given: &'static str,
    family: &'static str,
    suffix: &'static str,
    npi_base: &'static str,
    taxonomy: Code,
) -> Practitioner {
    let dentist = matches!(suffix.as_bytes(), b"DDS");
    Practitioner {
        family,
        given,
        suffix,
        npi_base,
        taxonomy,
        dentist,
    }
}

pub(crate) const PRACTITIONERS: &[Practitioner] = &[
    practitioner(
        "Alicia",
        "Moreno",
        "MD",
        "198700001",
        taxonomy("207Q00000X", "Family Medicine Physician"),
    ),
    practitioner(
        "Daniel",
        "Okafor",
        "MD",
        "198700002",
        taxonomy("207R00000X", "Internal Medicine Physician"),
    ),
    practitioner(
        "Priya",
        "Raman",
        "MD",
        "198700003",
        taxonomy("207RC0000X", "Cardiovascular Disease Physician"),
    ),
    practitioner(
        "Thomas",
        "Becker",
        "MD",
        "198700004",
        taxonomy("207X00000X", "Orthopaedic Surgery Physician"),
    ),
    practitioner(
        "Helen",
        "Park",
        "MD",
        "198700005",
        taxonomy("207P00000X", "Emergency Medicine Physician"),
    ),
    practitioner(
        "Sarah",
        "Lindqvist",
        "MD",
        "198700006",
        taxonomy("207L00000X", "Anesthesiology Physician"),
    ),
    practitioner(
        "Grace",
        "Liu",
        "DDS",
        "198700007",
        taxonomy("1223G0001X", "General Practice Dentist"),
    ),
    practitioner(
        "Omar",
        "Haddad",
        "DDS",
        "198700008",
        taxonomy("1223G0001X", "General Practice Dentist"),
    ),
];

impl Organization {
    /// What the X12 path calls it: `org-payer-<payer id>` for payers, `org-npi-<NPI>`
    /// for providers.
    pub(crate) fn id(&self) -> String {
        if self.role == OrgRole::Payer {
            edi_fhir::ids::payer_org(self.payer_id)
        } else {
            edi_fhir::ids::provider_org(Some(&self.npi()), Some(self.tin), self.name)
        }
    }

    /// The full NPI (providers; payers have none).
    pub(crate) fn npi(&self) -> String {
        npi(self.npi_base)
    }
}

impl Practitioner {
    /// What the X12 path calls them: `practitioner-npi-<NPI>`.
    pub(crate) fn id(&self) -> String {
        edi_fhir::ids::practitioner(Some(&self.npi()), self.family, self.given)
    }

    pub(crate) fn npi(&self) -> String {
        npi(self.npi_base)
    }
}

/// The organisations that bill claims of a given role.
pub(crate) fn providers(role: OrgRole) -> impl Iterator<Item = &'static Organization> {
    PROVIDERS.iter().filter(move |o| o.role == role)
}

/// Physicians (`dentist == false`) or dentists.
pub(crate) fn practitioners(dentist: bool) -> impl Iterator<Item = &'static Practitioner> {
    PRACTITIONERS.iter().filter(move |p| p.dentist == dentist)
}

/// A full 10-digit NPI: the Luhn check digit over the `80840` prefix plus nine digits,
/// so downstream NPI validators accept our synthetic numbers.
pub(crate) fn npi(base: &str) -> String {
    let doubled_sum: u32 = base
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let digit = u32::from(b.saturating_sub(b'0'));
            if i % 2 == 0 {
                let twice = digit * 2;
                if twice > 9 { twice - 9 } else { twice }
            } else {
                digit
            }
        })
        .sum();
    // 24 is the contribution of the constant prefix 80840.
    let check = (10 - (doubled_sum + 24) % 10) % 10;
    format!("{base}{check}")
}

/// The directory's last update: fixed, so output is reproducible.
fn directory_updated() -> String {
    Date::ymd(2025, 1, 15).instant(8 * 3600)
}

fn address(o: &Organization) -> Value {
    json!({ "line": [o.street], "city": o.city, "state": o.state, "postalCode": o.postal_code, "country": "US" })
}

fn organization_identifiers(o: &Organization) -> Vec<Value> {
    let mut ids = Vec::new();
    if o.role == OrgRole::Payer {
        let payer_id = Code::new(C4BB_IDENTIFIER_TYPE, "payerid", "Payer ID");
        let naic = Code::new(C4BB_IDENTIFIER_TYPE, "naiccode", "NAIC Code");
        ids.push(typed_identifier(payer_id, PLAN_PAYER_ID, o.payer_id));
        ids.push(typed_identifier(
            naic,
            NAIC,
            o.tin.get(..5).unwrap_or(o.tin),
        ));
    } else {
        let npi_type = Code::new(V2_0203, "NPI", "National provider identifier");
        ids.push(typed_identifier(npi_type, NPI, &npi(o.npi_base)));
    }
    let tax = Code::new(V2_0203, "TAX", "Tax ID number");
    ids.push(typed_identifier(tax, TAX_ID, o.tin));
    ids
}

pub(crate) fn organization_resource(o: &Organization) -> Value {
    let org_type = if o.role == OrgRole::Payer {
        Code::new(ORGANIZATION_TYPE, "pay", "Payer")
    } else {
        Code::new(ORGANIZATION_TYPE, "prov", "Healthcare Provider")
    };
    json!({
        "resourceType": "Organization",
        "id": o.id(),
        "meta": meta("C4BB-Organization", &directory_updated()),
        "identifier": organization_identifiers(o),
        "active": true,
        "type": [concept(org_type)],
        "name": o.name,
        "telecom": [{ "system": "phone", "value": "555-0100", "use": "work" }],
        "address": [address(o)],
    })
}

pub(crate) fn practitioner_resource(p: &Practitioner) -> Value {
    let npi_type = Code::new(V2_0203, "NPI", "National provider identifier");
    json!({
        "resourceType": "Practitioner",
        "id": p.id(),
        "meta": meta("C4BB-Practitioner", &directory_updated()),
        "identifier": [typed_identifier(npi_type, NPI, &npi(p.npi_base))],
        "active": true,
        "name": [{
            "use": "official",
            "family": p.family,
            "given": [p.given],
            "suffix": [p.suffix],
            "text": format!("{} {}, {}", p.given, p.family, p.suffix),
        }],
        "qualification": [{ "code": concept(p.taxonomy) }],
    })
}

/// Every directory resource, payers first.
pub(crate) fn resources() -> Vec<(ResourceType, String, Value)> {
    let orgs = [&PAYER, &SECONDARY_PAYER]
        .into_iter()
        .chain(PROVIDERS.iter());
    let orgs = orgs.map(|o| (ResourceType::Organization, o.id(), organization_resource(o)));
    let practs = PRACTITIONERS
        .iter()
        .map(|p| (ResourceType::Practitioner, p.id(), practitioner_resource(p)));
    orgs.chain(practs).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npi_check_digit_follows_the_luhn_rule() {
        // The example NPI in the CMS check-digit guidance.
        assert_eq!(npi("123456789"), "1234567893");
    }

    #[test]
    fn every_claim_role_has_a_provider_and_both_practitioner_pools_exist() {
        for role in [
            OrgRole::Hospital,
            OrgRole::PhysicianGroup,
            OrgRole::DentalPractice,
            OrgRole::Pharmacy,
        ] {
            assert!(providers(role).next().is_some(), "{role:?}");
        }
        assert!(practitioners(true).next().is_some());
        assert!(practitioners(false).next().is_some());
    }
}
