//! The demo plan's provider directory as a roster CSV (the form a plan's
//! credentialing system exports; see the README's Provider Directory section): the
//! same practitioners and provider organisations, with the same NPIs, as the demo
//! claims name, at their organisations' addresses, in one network of the demo plan.

use crate::directory::{OrgRole, PRACTITIONERS, PROVIDERS};

/// The demo network and insurance plan ids.
pub const DEMO_NETWORK_ID: &str = "network-demo-ppo";
pub const DEMO_PLAN_ID: &str = "plan-demo-ppo";

const HEADER: &str = "kind,npi,last_name,first_name,organization_name,taxonomy,taxonomy_display,location_id,location_name,address_line,city,state,zip,phone,latitude,longitude,accepting_new_patients,languages,network_id,network_name,plan_id,plan_name";

/// Approximate city centres, so `near` finds the demo locations.
fn position(city: &str) -> (f64, f64) {
    match city {
        "Dayton" => (39.7589, -84.1916),
        "Westerville" => (40.1262, -82.9291),
        "Dublin" => (40.0992, -83.1141),
        "Cincinnati" => (39.1031, -84.5120),
        "Cleveland" => (41.4993, -81.6944),
        _ => (39.9612, -82.9988),
    }
}

fn taxonomy(role: OrgRole) -> (&'static str, &'static str) {
    match role {
        OrgRole::Hospital => ("282N00000X", "General Acute Care Hospital"),
        OrgRole::DentalPractice => ("1223G0001X", "General Practice Dentist"),
        OrgRole::Pharmacy => ("3336C0003X", "Community/Retail Pharmacy"),
        OrgRole::PhysicianGroup | OrgRole::Payer => ("261QP2300X", "Primary Care Clinic"),
    }
}

/// The roster, header first.
pub fn roster_csv() -> String {
    let mut out = String::from(HEADER);
    out.push('\n');
    let network = format!(
        "{DEMO_NETWORK_ID},{} PPO Network,{DEMO_PLAN_ID},{} PPO",
        crate::PAYER_NAME,
        crate::PAYER_NAME
    );
    for (n, org) in PROVIDERS.iter().enumerate() {
        let (lat, lon) = position(org.city);
        // Spread the sites a little so nearest-first has an order.
        let (lat, lon) = (lat + 0.004 * n as f64, lon - 0.003 * n as f64);
        let (code, display) = taxonomy(org.role);
        out.push_str(&format!(
            "organization,{},,,{},{code},{display},location-{},{},{},{},{},{},614-555-01{:02},{lat:.4},{lon:.4},yes,en,{network}\n",
            org.npi(),
            org.name,
            org.npi(),
            org.name,
            org.street,
            org.city,
            org.state,
            org.postal_code,
            n,
        ));
    }
    for (n, p) in PRACTITIONERS.iter().enumerate() {
        let site = if p.dentist {
            PROVIDERS.iter().find(|o| o.role == OrgRole::DentalPractice)
        } else {
            PROVIDERS
                .iter()
                .filter(|o| matches!(o.role, OrgRole::PhysicianGroup | OrgRole::Hospital))
                .nth(n % 3)
        };
        let Some(site) = site else { continue };
        let accepting = if n % 3 == 2 { "no" } else { "yes" };
        let languages = if n % 2 == 0 { "en;es" } else { "en" };
        let (lat, lon) = position(site.city);
        let index = PROVIDERS
            .iter()
            .position(|o| o.npi() == site.npi())
            .unwrap_or(0);
        let (lat, lon) = (lat + 0.004 * index as f64, lon - 0.003 * index as f64);
        out.push_str(&format!(
            "practitioner,{},{},{},,{},{},location-{},{},{},{},{},{},614-555-02{:02},{lat:.4},{lon:.4},{accepting},{languages},{network}\n",
            p.npi(),
            p.family,
            p.given,
            p.taxonomy.code,
            p.taxonomy.display,
            site.npi(),
            site.name,
            site.street,
            site.city,
            site.state,
            site.postal_code,
            n,
        ));
    }
    out
}
