//! What a provider (or another plan) receives: the CARIN "Basis" (non-financial)
//! ExplanationOfBenefit, and only data with a date of service on or after 2016-01-01.
//!
//! CMS-0057-F lets Provider Access and Payer-to-Payer share claims *without provider
//! remittances and enrollee cost-sharing*. CARIN BB 2.1 made the Basis profiles for
//! exactly that. [`non_financial_eob`] removes, and the README lists why:
//!
//! * `payment`: what the plan paid and when (the remittance);
//! * `total`: submitted, allowed, paid, deductible, coinsurance, member liability…;
//! * `benefitBalance`: used and remaining benefits (cost-sharing accumulators);
//! * every `adjudication[].amount`, at the header, on `item`, `item.detail`,
//!   `item.detail.subDetail` and `addItem`, and each adjudication entry left with
//!   nothing but an amount category (it would only say "there was an amount");
//!   entries with a `reason` (adjustment or denial reason) or a `value` (allowed
//!   units) stay: they are clinical and administrative, not money;
//! * `item[].net`, `item[].unitPrice` (and on details and added items): the billed
//!   charges a remittance is computed from.
//!
//! `meta.profile` names the Basis counterpart of the claim's profile.
//! The member's own Patient Access API keeps the full EOB: this runs only in exports.

use serde_json::{Map, Value};

/// The earliest date of service CMS-0057-F requires providers to get.
pub const EARLIEST_SERVICE_DATE: &str = "2016-01-01";

const MONEY_FIELDS: &[&str] = &["net", "unitPrice"];

/// The non-financial EOB.
pub fn non_financial_eob(mut eob: Value) -> Value {
    if let Some(object) = eob.as_object_mut() {
        for field in ["payment", "total", "benefitBalance"] {
            object.remove(field);
        }
        strip_adjudication(object);
        for list in ["item", "addItem"] {
            if let Some(Value::Array(items)) = object.get_mut(list) {
                for item in items.iter_mut().filter_map(Value::as_object_mut) {
                    strip_line(item);
                }
            }
        }
        if let Some(Value::Array(profiles)) =
            object.get_mut("meta").and_then(|m| m.get_mut("profile"))
        {
            for profile in profiles.iter_mut() {
                if let Some(text) = profile.as_str() {
                    *profile = Value::String(basis_profile(text));
                }
            }
        }
    }
    eob
}

/// The Basis counterpart of a C4BB EOB profile URL (`…-Basis`, version kept).
pub fn basis_profile(profile: &str) -> String {
    let (url, version) = match profile.split_once('|') {
        Some((u, v)) => (u, Some(v)),
        None => (profile, None),
    };
    if !url.contains("/C4BB-ExplanationOfBenefit") || url.ends_with("-Basis") {
        return profile.to_owned();
    }
    match version {
        Some(v) => format!("{url}-Basis|{v}"),
        None => format!("{url}-Basis"),
    }
}

fn strip_line(line: &mut Map<String, Value>) {
    for field in MONEY_FIELDS {
        line.remove(*field);
    }
    strip_adjudication(line);
    for nested in ["detail", "subDetail"] {
        if let Some(Value::Array(children)) = line.get_mut(nested) {
            for child in children.iter_mut().filter_map(Value::as_object_mut) {
                strip_line(child);
            }
        }
    }
}

fn strip_adjudication(holder: &mut Map<String, Value>) {
    let Some(Value::Array(entries)) = holder.get_mut("adjudication") else {
        return;
    };
    for entry in entries.iter_mut().filter_map(Value::as_object_mut) {
        entry.remove("amount");
    }
    entries.retain(|e| e.get("reason").is_some() || e.get("value").is_some());
    if entries.is_empty() {
        holder.remove("adjudication");
    }
}

/// Whether the EOB's date of service is on or after 2016-01-01: the end of the
/// billable period (or its start, or `created`, when the period is open). An EOB
/// with no date at all is left out: the rule's window cannot be shown to hold.
pub fn within_service_window(eob: &Value) -> bool {
    let date = ["/billablePeriod/end", "/billablePeriod/start", "/created"]
        .iter()
        .find_map(|p| eob.pointer(p).and_then(Value::as_str));
    date.is_some_and(|d| d.get(..10).unwrap_or(d) >= EARLIEST_SERVICE_DATE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn payment_totals_and_amounts_are_removed_but_reasons_and_units_stay() {
        let eob = json!({
            "resourceType": "ExplanationOfBenefit",
            "meta": {"profile": ["http://hl7.org/fhir/us/carin-bb/StructureDefinition/C4BB-ExplanationOfBenefit-Professional-NonClinician|2.1.0"]},
            "payment": {"amount": {"value": 10}},
            "total": [{"category": {}, "amount": {"value": 12}}],
            "benefitBalance": [{}],
            "adjudication": [{"category": {"text": "paid"}, "amount": {"value": 3}}],
            "item": [{
                "sequence": 1,
                "net": {"value": 12},
                "adjudication": [
                    {"category": {"text": "paidtoprovider"}, "amount": {"value": 9}},
                    {"category": {"text": "adjustmentreason"}, "reason": {"text": "CO-45"}},
                    {"category": {"text": "allowedunits"}, "value": 2}
                ],
                "detail": [{"sequence": 1, "unitPrice": {"value": 1}, "adjudication": [{"category": {}, "amount": {}}]}]
            }]
        });
        let basis = non_financial_eob(eob);
        for gone in [
            "/payment",
            "/total",
            "/benefitBalance",
            "/adjudication",
            "/item/0/net",
            "/item/0/detail/0/unitPrice",
            "/item/0/detail/0/adjudication",
        ] {
            assert!(basis.pointer(gone).is_none(), "{gone} must be removed");
        }
        assert_eq!(
            basis["item"][0]["adjudication"].as_array().unwrap().len(),
            2
        );
        assert!(!basis.to_string().contains("amount"));
        assert_eq!(
            basis["meta"]["profile"][0],
            "http://hl7.org/fhir/us/carin-bb/StructureDefinition/C4BB-ExplanationOfBenefit-Professional-NonClinician-Basis|2.1.0"
        );
    }

    #[test]
    fn the_service_window_starts_in_2016() {
        assert!(within_service_window(
            &json!({"billablePeriod": {"start": "2015-12-30", "end": "2016-01-02"}})
        ));
        assert!(!within_service_window(
            &json!({"billablePeriod": {"start": "2015-12-01", "end": "2015-12-31"}})
        ));
        assert!(!within_service_window(&json!({})));
    }
}
