//! The pure merge rule: how a [`Change`] folds into the stored resource.
//!
//! # ExplanationOfBenefit: who owns what
//!
//! An EOB receives contributions from two kinds of source, told apart by
//! content: a **remittance** contribution (835) always has
//! `payment.identifier` (the TRN02 trace number); anything else is a
//! **claim** contribution (837, possibly carrying the plan's own
//! adjudication). Each field has an owner:
//!
//! - adjudication-owned: `identifier`, `created`, `total`, `payment`, and
//!   every adjudication entry except the network statuses (on items and in
//!   the header). A remittance replaces these (and removes those it lacks);
//!   a claim sets them only while no remittance has been applied.
//! - claim-owned: everything else (type, patient, provider, care team,
//!   diagnoses, procedures, supporting info, item details, network
//!   statuses…). A claim replaces the ones it has; a remittance only fills
//!   the ones still absent.
//! - `related` is a set union; `status` follows the cancel rules in the crate
//!   docs; items are matched by `sequence`.
//!
//! Because a field is either written by its owner unconditionally or filled
//! by the other kind only when absent, applying an 837 and its 835 gives the
//! same resource in either order, and applying any change twice is a no-op.
//!
//! # Other resources
//!
//! Shallow: fields in the change replace stored ones, `identifier`s are
//! unioned, and `Coverage.period` merges its ends (an end-only termination
//! keeps the start; a dated record without an end — an add or a
//! reinstatement — reopens the period).

use std::borrow::Cow;

use fhir::ResourceType;
use serde_json::{Map, Value};

use crate::json::{self};
use crate::kind::ClaimKind;
use crate::{Action, Change};
use fhir::systems::{PDEX_PRIOR_AUTHORIZATION, PLAN_CLAIM_ID};

type Object = Map<String, Value>;

/// Header fields the adjudication owns.
const ADJUDICATION_OWNED: &[&str] = &["identifier", "created", "total", "payment"];

/// Adjudication categories that belong to the claim side (plan configuration
/// about the provider, not payment facts).
const CLAIM_OWNED_CATEGORIES: &[&str] = &[
    "benefitpaymentstatus",
    "billingnetworkstatus",
    "renderingnetworkstatus",
];

/// Given the current stored resource (its `meta` is ignored) and a change,
/// the next resource, or `None` when applying it would change nothing (which
/// is what makes re-ingesting a file a no-op). The result carries
/// `meta.profile` only; the store owns `versionId` and `lastUpdated`.
pub fn apply(current: Option<&Value>, change: &Change) -> Option<Value> {
    let current = current.and_then(Value::as_object);
    let next = match (&change.action, current) {
        (Action::Cancel { .. }, None) => return None,
        (Action::Cancel { reason }, Some(cur)) => {
            if let (Some(reversed), Some(shown)) = (reversed_icn(reason), icn(cur))
                && reversed != shown
            {
                // The reversal is of a payment that a correction already
                // superseded (e.g. the same 835 ingested again).
                return None;
            }
            let mut next = without_meta(cur);
            next.insert("status".into(), Value::from("cancelled"));
            next
        }
        (Action::Merge(resource), cur) => {
            let value = resource.to_value();
            let incoming = value.as_object()?;
            if change.resource_type == ResourceType::ExplanationOfBenefit
                && is_prior_authorization(incoming)
            {
                merge_prior_authorization(cur, incoming)?
            } else if change.resource_type == ResourceType::ExplanationOfBenefit {
                merge_eob(cur, incoming)
            } else {
                let mut next = cur.map(without_meta).unwrap_or_default();
                merge_shared_object(&mut next, incoming);
                next
            }
        }
    };
    let next = finalize(change.resource_type, next);
    if current.is_some_and(|cur| same_without_meta(cur, &next)) {
        return None;
    }
    Some(Value::Object(next))
}

/// The JSON text of what [`apply`] makes of `change` when nothing is stored yet:
/// what a writer without a store (`convert`) writes. The mapper's own text already
/// is that, meta included, except for a Coverage an 837 names without knowing its
/// status, which gets the default status. So no parse and no serialisation, which
/// otherwise cost as much as the mapping itself; the test
/// `first_versions_are_what_apply_makes_of_nothing` holds it to [`apply`].
pub fn first_version_json(change: &Change) -> Option<Cow<'_, str>> {
    let Action::Merge(resource) = &change.action else {
        return None;
    };
    let json = resource.json();
    if change.resource_type == ResourceType::Coverage && !has_status(json) {
        let fields = json.strip_prefix('{')?;
        return Some(Cow::Owned(format!(
            "{{\"status\":\"{DEFAULT_COVERAGE_STATUS}\",{fields}"
        )));
    }
    Some(Cow::Borrowed(json))
}

/// Whether a resource's JSON has a top-level `status` (skims, builds nothing).
fn has_status(json: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Status {
        status: Option<serde::de::IgnoredAny>,
    }
    serde_json::from_str::<Status>(json).is_ok_and(|s| s.status.is_some())
}

/// A Coverage that nobody gave a status (an 837 names it) is in force.
const DEFAULT_COVERAGE_STATUS: &str = "active";

const REVERSAL: &str = "reversed by 835 CLP02 = 22 (payer claim control number ";

/// The `Cancel` reason of an 835 reversal; [`apply`] reads the reversed ICN
/// back from it, so a reversal cancels only the payment it reverses.
pub fn reversal_reason(icn: &str, trace: &str) -> String {
    format!("{REVERSAL}{icn}, trace {trace})")
}

fn reversed_icn(reason: &str) -> Option<&str> {
    reason.strip_prefix(REVERSAL)?.split(", trace ").next()
}

fn without_meta(o: &Object) -> Object {
    let mut o = o.clone();
    o.remove("meta");
    o
}

fn same_without_meta(cur: &Object, next: &Object) -> bool {
    let len = |o: &Object| o.len() - usize::from(o.contains_key("meta"));
    len(cur) == len(next)
        && next
            .iter()
            .filter(|(k, _)| k.as_str() != "meta")
            .all(|(k, v)| cur.get(k) == Some(v))
}

/// Adds `meta.profile` (recomputed from content, since the store hands us
/// resources without meta) and required defaults.
fn finalize(resource_type: ResourceType, mut o: Object) -> Object {
    o.remove("meta");
    if resource_type == ResourceType::ExplanationOfBenefit && is_prior_authorization(&o) {
        o.insert(
            "meta".into(),
            serde_json::json!({ "profile": [PDEX_PRIOR_AUTHORIZATION] }),
        );
        return o;
    }
    let profile = match resource_type {
        ResourceType::ExplanationOfBenefit => eob_kind(&o).map(ClaimKind::profile),
        ResourceType::Patient => Some("C4BB-Patient"),
        ResourceType::Coverage => Some("C4BB-Coverage"),
        ResourceType::Organization => Some("C4BB-Organization"),
        ResourceType::Practitioner => Some("C4BB-Practitioner"),
        ResourceType::RelatedPerson => Some("C4BB-RelatedPerson"),
        // Types we never produce (e.g. Consent) keep whatever they had.
        _ => None,
    };
    if let Some(p) = profile {
        o.insert("meta".into(), json::meta(p));
    }
    if resource_type == ResourceType::Coverage && !o.contains_key("status") {
        o.insert("status".into(), Value::from(DEFAULT_COVERAGE_STATUS));
    }
    o
}

fn first_code(v: Option<&Value>) -> Option<&str> {
    v?.get("coding")?.get(0)?.get("code")?.as_str()
}

fn eob_kind(o: &Object) -> Option<ClaimKind> {
    ClaimKind::from_codes(first_code(o.get("type"))?, first_code(o.get("subType")))
}

/// True for an 835 contribution (see the module docs).
pub fn is_remittance(o: &Object) -> bool {
    o.get("payment").and_then(|p| p.get("identifier")).is_some()
}

/// `(system, value)` of the `uc` identifier.
fn unique_claim_id(o: &Object) -> Option<(&str, &str)> {
    o.get("identifier")?.as_array()?.iter().find_map(|id| {
        (first_code(id.get("type")) == Some("uc")).then(|| {
            (
                id.get("system").and_then(Value::as_str).unwrap_or(""),
                id.get("value").and_then(Value::as_str).unwrap_or(""),
            )
        })
    })
}

/// The payer ICN, when the `uc` identifier is one (not the claim-key stand-in).
fn icn(o: &Object) -> Option<&str> {
    unique_claim_id(o).and_then(|(system, value)| (system == PLAN_CLAIM_ID).then_some(value))
}

/// The ICN a claim contribution says it replaces (`related` prior).
fn replaces(o: &Object) -> Option<&str> {
    o.get("related")?.as_array()?.iter().find_map(|r| {
        (first_code(r.get("relationship")) == Some("prior"))
            .then(|| r.get("reference")?.get("value")?.as_str())
            .flatten()
    })
}

fn merge_eob(cur: Option<&Object>, inc: &Object) -> Object {
    let remit = is_remittance(inc);
    let mut out = cur.map(without_meta).unwrap_or_default();
    let mut has_remit = is_remittance(&out);
    let old_icn = icn(&out).map(str::to_owned);
    let was_cancelled = out.get("status").and_then(Value::as_str) == Some("cancelled");
    if !remit && old_icn.is_some() && replaces(inc) == old_icn.as_deref() {
        // A replacement of the claim whose adjudication we hold: that
        // adjudication is stale until the replacement is adjudicated.
        strip_adjudication(&mut out);
        has_remit = false;
    }
    for (k, v) in inc {
        match k.as_str() {
            "meta" | "status" | "related" | "item" | "adjudication" => {}
            "resourceType" | "id" | "outcome" | "use" => {
                out.insert(k.clone(), v.clone());
            }
            owned if ADJUDICATION_OWNED.contains(&owned) => {
                if remit || !has_remit {
                    out.insert(k.clone(), v.clone());
                }
            }
            _ => {
                if !remit || !out.contains_key(k) {
                    out.insert(k.clone(), v.clone());
                }
            }
        }
    }
    if remit {
        for k in ADJUDICATION_OWNED {
            if !inc.contains_key(*k) {
                out.remove(*k);
            }
        }
    }
    let header = merge_adjudication(
        out.get("adjudication"),
        inc.get("adjudication"),
        remit,
        has_remit,
    );
    set_array(&mut out, "adjudication", header);
    merge_items(&mut out, inc.get("item"), remit, has_remit);
    merge_related(&mut out, inc, remit, old_icn.as_deref());
    let new_icn = icn(&out).map(str::to_owned);
    let status = match (cur, was_cancelled) {
        (None, _) => inc
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("active"),
        // A correction (new ICN from a remittance) reactivates; a re-sent
        // claim or a re-sent copy of the reversed payment does not.
        (Some(_), true) if remit && new_icn.is_some() && new_icn != old_icn => "active",
        (Some(_), true) => "cancelled",
        (Some(_), false) => "active",
    };
    out.insert("status".into(), Value::from(status));
    out
}

/// A PDex Prior Authorization (`use = preauthorization`, from a 278).
fn is_prior_authorization(o: &Object) -> bool {
    o.get("use").and_then(Value::as_str) == Some("preauthorization")
}

/// A prior authorization is what the UMO said last: each 278 response
/// carries the whole review (request, decision, items), so a newer one
/// replaces the record as a new version. Newer is `created` (BHT04); an
/// older response arriving late (`None`: nothing changes) never rolls the
/// record back, and on the same day the later arrival wins, except that a
/// cancelled record reopens only for a later date (a re-sent request must
/// not revive a request its response closed).
fn merge_prior_authorization(cur: Option<&Object>, inc: &Object) -> Option<Object> {
    let Some(cur) = cur else {
        return Some(without_meta(inc));
    };
    let created = |o: &Object| o.get("created").and_then(Value::as_str).map(str::to_owned);
    let status = |o: &Object| o.get("status").and_then(Value::as_str) == Some("cancelled");
    match created(inc).cmp(&created(cur)) {
        std::cmp::Ordering::Less => None,
        std::cmp::Ordering::Equal if status(cur) && !status(inc) => None,
        _ => Some(without_meta(inc)),
    }
}

fn strip_adjudication(out: &mut Object) {
    for k in ADJUDICATION_OWNED {
        out.remove(*k);
    }
    let header = merge_adjudication(out.get("adjudication"), None, true, true);
    set_array(out, "adjudication", header);
    if let Some(Value::Array(items)) = out.get_mut("item") {
        for item in items.iter_mut().filter_map(Value::as_object_mut) {
            let adj = merge_adjudication(item.get("adjudication"), None, true, true);
            set_array(item, "adjudication", adj);
        }
    }
}

fn set_array(o: &mut Object, key: &str, values: Vec<Value>) {
    if values.is_empty() {
        o.remove(key);
    } else {
        o.insert(key.to_owned(), Value::Array(values));
    }
}

fn is_claim_owned_entry(entry: &Value) -> bool {
    first_code(entry.get("category")).is_some_and(|c| CLAIM_OWNED_CATEGORIES.contains(&c))
}

fn split(v: Option<&Value>) -> (Vec<Value>, Vec<Value>) {
    v.and_then(Value::as_array)
        .map(|a| a.iter().cloned().partition(|e| !is_claim_owned_entry(e)))
        .unwrap_or_default()
}

/// Adjudication entries: adjudication-owned first, then claim-owned.
fn merge_adjudication(
    cur: Option<&Value>,
    inc: Option<&Value>,
    remit: bool,
    has_remit: bool,
) -> Vec<Value> {
    let (cur_adj, cur_claim) = split(cur);
    let (inc_adj, inc_claim) = split(inc);
    let mut adj = if remit || !has_remit {
        inc_adj
    } else {
        cur_adj
    };
    let claim = match (remit, cur_claim.is_empty(), inc_claim.is_empty()) {
        (false, _, false) | (true, true, _) => inc_claim,
        _ => cur_claim,
    };
    adj.extend(claim);
    adj
}

fn sequence(v: &Value) -> u64 {
    v.get("sequence").and_then(Value::as_u64).unwrap_or(0)
}

fn merge_items(out: &mut Object, inc: Option<&Value>, remit: bool, has_remit: bool) {
    let mut items: Vec<Value> = match out.remove("item") {
        Some(Value::Array(a)) => a,
        _ => Vec::new(),
    };
    let mut touched = Vec::new();
    for new in inc.and_then(Value::as_array).into_iter().flatten() {
        let Some(new_obj) = new.as_object() else {
            continue;
        };
        let seq = sequence(new);
        touched.push(seq);
        match items.iter_mut().find(|i| sequence(i) == seq) {
            Some(Value::Object(existing)) => merge_item(existing, new_obj, remit, has_remit),
            _ => {
                let mut fresh = Object::new();
                merge_item(&mut fresh, new_obj, remit, has_remit || remit);
                items.push(Value::Object(fresh));
            }
        }
    }
    if remit {
        for item in items.iter_mut() {
            if !touched.contains(&sequence(item))
                && let Some(obj) = item.as_object_mut()
            {
                let adj = merge_adjudication(obj.get("adjudication"), None, true, true);
                set_array(obj, "adjudication", adj);
            }
        }
    }
    items.sort_by_key(sequence);
    set_array(out, "item", items);
}

fn merge_item(existing: &mut Object, inc: &Object, remit: bool, has_remit: bool) {
    for (k, v) in inc {
        match k.as_str() {
            "adjudication" => {}
            "sequence" => {
                existing.insert(k.clone(), v.clone());
            }
            _ => {
                if !remit || !existing.contains_key(k) {
                    existing.insert(k.clone(), v.clone());
                }
            }
        }
    }
    let adj = merge_adjudication(
        existing.get("adjudication"),
        inc.get("adjudication"),
        remit,
        has_remit,
    );
    set_array(existing, "adjudication", adj);
}

fn related_key(r: &Value) -> (String, String) {
    (
        first_code(r.get("relationship")).unwrap_or("").to_owned(),
        r.get("reference")
            .and_then(|x| x.get("value"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
    )
}

/// `related` is a set: union, sorted, so the order of arrival doesn't show.
/// A remittance that moves the EOB to a new ICN links the previous one.
fn merge_related(out: &mut Object, inc: &Object, remit: bool, old_icn: Option<&str>) {
    let mut all: Vec<Value> = match out.remove("related") {
        Some(Value::Array(a)) => a,
        _ => Vec::new(),
    };
    all.extend(
        inc.get("related")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .cloned(),
    );
    if remit
        && let Some(old) = old_icn
        && icn(inc).is_some_and(|new| new != old)
    {
        all.push(related_prior_value(old));
    }
    all.sort_by_key(related_key);
    all.dedup_by(|a, b| related_key(a) == related_key(b));
    set_array(out, "related", all);
}

/// [`model::related_prior`](crate::model::related_prior) as a `Value`.
fn related_prior_value(icn: &str) -> Value {
    let mut json = String::new();
    crate::write::ToJson::write_json(&crate::model::related_prior(icn), &mut json);
    serde_json::from_str(&json).unwrap_or(Value::Null)
}

/// Shallow merge for Patient, Coverage, Organization, Practitioner (also used
/// to fold two changes of one set into one).
pub(crate) fn merge_shared(cur: &mut Value, inc: &Value) {
    if let (Some(cur), Some(inc)) = (cur.as_object_mut(), inc.as_object()) {
        merge_shared_object(cur, inc);
    }
}

fn merge_shared_object(cur: &mut Object, inc: &Object) {
    for (k, v) in inc {
        match k.as_str() {
            "meta" => {}
            "identifier" => union_identifiers(cur, v),
            "period" => merge_period(cur, v),
            "class" => merge_classes(cur, v),
            _ => {
                cur.insert(k.clone(), v.clone());
            }
        }
    }
}

fn union_identifiers(cur: &mut Object, inc: &Value) {
    let key = |v: &Value| (v.get("system").cloned(), v.get("value").cloned());
    let mut list = match cur.remove("identifier") {
        Some(Value::Array(a)) => a,
        _ => Vec::new(),
    };
    for id in inc.as_array().into_iter().flatten() {
        if !list.iter().any(|x| key(x) == key(id)) {
            list.push(id.clone());
        }
    }
    set_array(cur, "identifier", list);
}

/// Coverage classes are keyed by their type (group, plan, …): an 837 knows the
/// group (SBR03) but not the plan the 834 named, so a class the change carries
/// replaces the stored class of its type and leaves the others.
fn merge_classes(cur: &mut Object, inc: &Value) {
    let class_type = |v: &Value| v.pointer("/type/coding/0/code").cloned();
    let mut list = match cur.remove("class") {
        Some(Value::Array(a)) => a,
        _ => Vec::new(),
    };
    for class in inc.as_array().into_iter().flatten() {
        match list.iter_mut().find(|x| class_type(x) == class_type(class)) {
            Some(stored) => *stored = class.clone(),
            None => list.push(class.clone()),
        }
    }
    set_array(cur, "class", list);
}

fn merge_period(cur: &mut Object, inc: &Value) {
    let Some(inc) = inc.as_object() else { return };
    let mut period = cur
        .remove("period")
        .and_then(|p| p.as_object().cloned())
        .unwrap_or_default();
    if let Some(start) = inc.get("start") {
        period.insert("start".into(), start.clone());
        if !inc.contains_key("end") {
            period.remove("end");
        }
    }
    if let Some(end) = inc.get("end") {
        period.insert("end".into(), end.clone());
    }
    if !period.is_empty() {
        cur.insert("period".into(), Value::Object(period));
    }
}
