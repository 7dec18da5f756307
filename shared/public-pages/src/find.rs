//! `/directory/find`: the public "Find a provider" page.
//!
//! The form's answers become a Plan-Net `PractitionerRole` search (specialty, network,
//! `location.address-postalcode`/`address-city`, or `location.near` around the
//! directory's own locations in that ZIP or city) run by the directory API's search
//! code through [`ProviderSearch`], so the page finds exactly what the API finds.
//! Plan-Net has no search parameter for "accepting new patients" or a practitioner's
//! language, so those two narrow the API's matches as they are read, over at most
//! [`MAX_READ`] roles.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use directory_api::{DirectoryApi, Found};
use fhir::ResourceType;
use fhir_api::ApiError;
use fhir_store::{KeyValueStore, ResourceRecord, ResourceStore};
use plan_net::profiles::{NETWORK_REFERENCE_EXTENSION, NETWORK_TYPE_CODE, NEW_PATIENTS_EXTENSION};
use serde_json::Value;

use crate::views::{FindForm, LocationView, ProviderView};

/// Roles shown on one page of results.
pub(crate) const MAX_SHOWN: usize = 25;
/// The most roles read to fill a page when the new-patient or language filter drops
/// some: bounds the work of one page view.
pub(crate) const MAX_READ: usize = 500;
/// The longest text field the form reads; the rest is ignored.
const MAX_FIELD_CHARS: usize = 100;
/// Roles per search page while filling the results.
const BATCH: usize = 100;
/// Distances the form offers, in miles.
pub(crate) const DISTANCES: [u32; 5] = [5, 10, 25, 50, 100];
/// Languages the form offers (BCP-47 code, name).
pub(crate) const LANGUAGES: &[(&str, &str)] = &[
    ("en", "English"),
    ("es", "Spanish"),
    ("zh", "Chinese"),
    ("vi", "Vietnamese"),
    ("ar", "Arabic"),
    ("ko", "Korean"),
    ("ru", "Russian"),
    ("fr", "French"),
    ("tl", "Tagalog"),
    ("so", "Somali"),
];

type Boxed<'a> = Pin<Box<dyn Future<Output = Result<Found, ApiError>> + Send + 'a>>;

/// The directory search the page runs on: [`DirectoryApi::find`], as a trait object
/// so [`crate::PublicPages`] stays one type whatever store the directory uses.
pub trait ProviderSearch: Send + Sync {
    fn find_boxed<'a>(
        &'a self,
        resource_type: ResourceType,
        params: &'a [(String, String)],
        count: usize,
        after: Option<String>,
    ) -> Boxed<'a>;
}

impl<S> ProviderSearch for DirectoryApi<S>
where
    S: ResourceStore + KeyValueStore + Send + Sync + 'static,
{
    fn find_boxed<'a>(
        &'a self,
        resource_type: ResourceType,
        params: &'a [(String, String)],
        count: usize,
        after: Option<String>,
    ) -> Boxed<'a> {
        Box::pin(self.find(resource_type, params, count, after))
    }
}

impl<T: ProviderSearch + ?Sized> ProviderSearch for Arc<T> {
    fn find_boxed<'a>(
        &'a self,
        resource_type: ResourceType,
        params: &'a [(String, String)],
        count: usize,
        after: Option<String>,
    ) -> Boxed<'a> {
        (**self).find_boxed(resource_type, params, count, after)
    }
}

/// What the page shows after a search.
pub(crate) enum Outcome {
    /// No criterion given: the form alone.
    Form,
    /// The form's answers cannot be searched; the text says why, in plain words.
    Invalid(String),
    Results {
        providers: Vec<ProviderView>,
        /// More roles matched than were read or shown.
        more: bool,
    },
}

/// The search could not run (the directory's store failed).
#[derive(Debug, thiserror::Error)]
#[error("the provider directory could not be searched: {0}")]
pub(crate) struct FindError(String);

/// Reads the form from the query string. Unknown fields are ignored; every value is
/// trimmed and bounded.
pub(crate) fn read_form(query: &str) -> FindForm {
    let mut form = FindForm::default();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let value: String = value.trim().chars().take(MAX_FIELD_CHARS).collect();
        match key.as_ref() {
            "specialty" => form.specialty = value,
            "where" => form.place = value,
            "distance" => form.distance = value,
            "network" => form.network = value,
            "accepting" => form.accepting = value == "yes",
            "language" => form.language = value,
            _ => {}
        }
    }
    form
}

/// The networks for the form's choice, by name (at most 100).
pub(crate) async fn networks(
    search: &dyn ProviderSearch,
) -> Result<Vec<(String, String)>, FindError> {
    let params = [("type".to_owned(), NETWORK_TYPE_CODE.to_owned())];
    let found = search
        .find_boxed(ResourceType::Organization, &params, 100, None)
        .await
        .map_err(|e| FindError(e.to_string()))?;
    let mut networks: Vec<(String, String)> = found
        .matches
        .iter()
        .map(Arc::as_ref)
        .filter_map(parse)
        .map(|r| {
            let name = text(&r.body["name"]).unwrap_or_else(|| r.id.clone());
            (r.id, name)
        })
        .collect();
    networks.sort_by_key(|(_, name)| name.to_lowercase());
    Ok(networks)
}

/// Runs the form's search.
pub(crate) async fn find(
    search: &dyn ProviderSearch,
    form: &FindForm,
) -> Result<Outcome, FindError> {
    if form.is_empty() {
        return Ok(Outcome::Form);
    }
    let mut params = match criteria(form) {
        Ok(params) => params,
        Err(message) => return Ok(Outcome::Invalid(message)),
    };
    if let Some(miles) = distance(form) {
        let miles = match miles {
            Ok(m) => m,
            Err(message) => return Ok(Outcome::Invalid(message)),
        };
        let Some((lat, lon)) = centre(search, &form.place).await? else {
            return Ok(Outcome::Invalid(format!(
                "No provider locations in the directory are in “{}”, so there is no centre to measure the distance from. Try a nearby ZIP code or city, or search without a distance.",
                form.place
            )));
        };
        params.push((
            "location.near".to_owned(),
            format!("{lat:.5}|{lon:.5}|{miles}|mi"),
        ));
    } else if !form.place.is_empty() {
        params.push(place_param(&form.place));
    }
    for include in ["practitioner", "location", "network"] {
        params.push(("_include".to_owned(), format!("PractitionerRole:{include}")));
    }

    let mut providers = Vec::new();
    let mut read = 0;
    let mut after = None;
    loop {
        let found = match search
            .find_boxed(ResourceType::PractitionerRole, &params, BATCH, after)
            .await
        {
            Ok(found) => found,
            // Too broad a search, or a value the search code refuses: say so.
            Err(ApiError::BadRequest(reason)) => return Ok(Outcome::Invalid(plain(&reason))),
            Err(error) => return Err(FindError(error.to_string())),
        };
        read += found.matches.len();
        let included: Vec<Parsed> = found
            .included
            .iter()
            .map(Arc::as_ref)
            .filter_map(parse)
            .collect();
        for role in found.matches.iter().map(Arc::as_ref).filter_map(parse) {
            if let Some(view) = provider_view(&role.body, &included, form) {
                providers.push(view);
            }
        }
        let more = found.next.is_some();
        if providers.len() >= MAX_SHOWN || !more || read >= MAX_READ {
            let more = more || providers.len() > MAX_SHOWN;
            providers.truncate(MAX_SHOWN);
            return Ok(Outcome::Results { providers, more });
        }
        after = found.next;
    }
}

/// The criteria the search code evaluates: specialty and network.
fn criteria(form: &FindForm) -> Result<Vec<(String, String)>, String> {
    let mut params = Vec::new();
    if !form.specialty.is_empty() {
        if is_nucc_code(&form.specialty) {
            params.push(("specialty".to_owned(), form.specialty.clone()));
        } else {
            params.push(("specialty:text".to_owned(), form.specialty.clone()));
        }
    }
    if !form.network.is_empty() {
        if !fhir::is_valid_id(&form.network) {
            return Err("Choose a network from the list.".to_owned());
        }
        params.push((
            "network".to_owned(),
            format!("Organization/{}", form.network),
        ));
    }
    if !form.language.is_empty() && !LANGUAGES.iter().any(|(code, _)| *code == form.language) {
        return Err("Choose a language from the list.".to_owned());
    }
    Ok(params)
}

/// The chosen distance in miles, when one was chosen.
fn distance(form: &FindForm) -> Option<Result<u32, String>> {
    if form.distance.is_empty() {
        return None;
    }
    let chosen = form
        .distance
        .parse::<u32>()
        .ok()
        .filter(|miles| DISTANCES.contains(miles));
    Some(match chosen {
        None => Err("Choose a distance from the list.".to_owned()),
        Some(_) if form.place.is_empty() => {
            Err("Enter a ZIP code or city to search within a distance of it.".to_owned())
        }
        Some(miles) => Ok(miles),
    })
}

fn is_zip(place: &str) -> bool {
    let (five, plus4) = place.split_once('-').unwrap_or((place, ""));
    five.len() == 5
        && five.bytes().all(|b| b.is_ascii_digit())
        && (plus4.is_empty() || (plus4.len() == 4 && plus4.bytes().all(|b| b.is_ascii_digit())))
}

/// `Columbus` or `Columbus, OH`: the city part.
fn city(place: &str) -> &str {
    place.split(',').next().unwrap_or(place).trim()
}

/// The role's location criterion for a ZIP code or a city (no distance).
fn place_param(place: &str) -> (String, String) {
    if is_zip(place) {
        (
            "location.address-postalcode".to_owned(),
            place[..5].to_owned(),
        )
    } else {
        ("location.address-city".to_owned(), city(place).to_owned())
    }
}

/// The centre of the directory's own locations in a ZIP code or city: the page needs
/// no geocoding service, and a place with no providers has no centre.
async fn centre(search: &dyn ProviderSearch, place: &str) -> Result<Option<(f64, f64)>, FindError> {
    let (param, value) = place_param(place);
    let param = param.trim_start_matches("location.").to_owned();
    let params = [(param, value)];
    let found = match search
        .find_boxed(ResourceType::Location, &params, 100, None)
        .await
    {
        Ok(found) => found,
        Err(ApiError::BadRequest(_)) => return Ok(None),
        Err(error) => return Err(FindError(error.to_string())),
    };
    let positions: Vec<(f64, f64)> = found
        .matches
        .iter()
        .map(Arc::as_ref)
        .filter_map(parse)
        .filter_map(|r| position(&r.body))
        .collect();
    if positions.is_empty() {
        return Ok(None);
    }
    let n = positions.len() as f64;
    let (lat, lon) = positions
        .iter()
        .fold((0.0, 0.0), |(a, b), (lat, lon)| (a + lat, b + lon));
    Ok(Some((lat / n, lon / n)))
}

fn is_nucc_code(text: &str) -> bool {
    text.len() == 10 && text.ends_with('X') && text.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The search code's reason, without FHIR parameter syntax a member cannot act on.
fn plain(reason: &str) -> String {
    // The search code's bounds: too many candidates, or a chain too broad.
    if reason.contains("more than") || reason.contains("narrow") {
        "Too many providers match to show. Add a specialty, a network or a ZIP code with a shorter distance.".to_owned()
    } else {
        "This search cannot be run. Check the specialty and the ZIP code or city, and try again."
            .to_owned()
    }
}

/// The role as the page shows it, or `None` when the new-patient or language filter
/// leaves it out.
fn provider_view(body: &Value, included: &[Parsed], form: &FindForm) -> Option<ProviderView> {
    let accepting = accepting_new_patients(body);
    if form.accepting && accepting != Some(true) {
        return None;
    }
    let practitioner =
        reference_target(&body["practitioner"], ResourceType::Practitioner, included);
    let languages: Vec<String> = practitioner
        .map(|p| {
            array(&p.body["communication"])
                .flat_map(|c| array(&c["coding"]))
                .filter_map(|coding| coding["code"].as_str())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if !form.language.is_empty()
        && !languages
            .iter()
            .any(|l| l == &form.language || l.starts_with(&format!("{}-", form.language)))
    {
        return None;
    }
    let name = practitioner
        .and_then(|p| practitioner_name(&p.body))
        .unwrap_or_else(|| "Name not listed".to_owned());
    let specialties = array(&body["specialty"])
        .filter_map(|s| {
            text(&s["text"]).or_else(|| {
                array(&s["coding"]).find_map(|c| text(&c["display"]).or_else(|| text(&c["code"])))
            })
        })
        .collect();
    let networks = array(&body["extension"])
        .filter(|e| e["url"].as_str() == Some(NETWORK_REFERENCE_EXTENSION))
        .filter_map(|e| {
            reference_target(&e["valueReference"], ResourceType::Organization, included)
        })
        .filter_map(|n| text(&n.body["name"]))
        .collect();
    let role_phone = phone(body);
    let locations = array(&body["location"])
        .filter_map(|l| reference_target(l, ResourceType::Location, included))
        .map(|l| location_view(&l.body, role_phone.clone()))
        .collect();
    Some(ProviderView {
        name,
        specialties,
        networks,
        accepting,
        languages: languages
            .iter()
            .map(|code| language_name(code).to_owned())
            .collect(),
        locations,
    })
}

fn location_view(location: &Value, role_phone: Option<String>) -> LocationView {
    let address = &location["address"];
    let mut lines: Vec<String> = array(&address["line"]).filter_map(text).collect();
    let city_line = [
        text(&address["city"]).unwrap_or_default(),
        [text(&address["state"]), text(&address["postalCode"])]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" "),
    ]
    .into_iter()
    .filter(|s| !s.is_empty())
    .collect::<Vec<_>>()
    .join(", ");
    if !city_line.is_empty() {
        lines.push(city_line);
    }
    let name = text(&location["name"]).unwrap_or_else(|| "Office".to_owned());
    let map_url = match position(location) {
        Some((lat, lon)) => format!(
            "https://www.openstreetmap.org/?mlat={lat:.5}&mlon={lon:.5}#map=17/{lat:.5}/{lon:.5}"
        ),
        None => format!(
            "https://www.openstreetmap.org/search?query={}",
            form_urlencoded::byte_serialize(lines.join(", ").as_bytes()).collect::<String>()
        ),
    };
    let phone = role_phone.or_else(|| phone(location));
    LocationView {
        name,
        address: lines,
        phone_uri: phone.as_deref().map(tel_uri),
        phone,
        map_url,
    }
}

/// The included resource a reference names.
fn reference_target<'a>(
    reference: &Value,
    resource_type: ResourceType,
    included: &'a [Parsed],
) -> Option<&'a Parsed> {
    let reference = fhir::Reference::parse(reference["reference"].as_str()?)?;
    (reference.resource_type == resource_type).then_some(())?;
    included
        .iter()
        .find(|r| r.resource_type == resource_type && r.id == reference.id)
}

/// A stored resource with its JSON parsed once.
struct Parsed {
    resource_type: ResourceType,
    id: String,
    body: Value,
}

/// Stored bodies are valid JSON; one that is not is left out of the page.
fn parse(record: &ResourceRecord) -> Option<Parsed> {
    Some(Parsed {
        resource_type: record.resource_type,
        id: record.id.clone(),
        body: serde_json::from_str(&record.body).ok()?,
    })
}

/// `Some(true)` when the role says it takes new patients, `Some(false)` when it says
/// it does not, `None` when it does not say.
fn accepting_new_patients(role: &Value) -> Option<bool> {
    array(&role["extension"])
        .filter(|e| e["url"].as_str() == Some(NEW_PATIENTS_EXTENSION))
        .flat_map(|e| array(&e["extension"]))
        .filter(|e| e["url"].as_str() == Some("acceptingPatients"))
        .flat_map(|e| array(&e["valueCodeableConcept"]["coding"]))
        .find_map(|c| c["code"].as_str())
        .map(|code| code == "newpt")
}

fn practitioner_name(practitioner: &Value) -> Option<String> {
    let name = array(&practitioner["name"]).next()?;
    text(&name["text"]).or_else(|| {
        let given: Vec<String> = array(&name["given"]).filter_map(text).collect();
        let full = format!(
            "{} {}",
            given.join(" "),
            text(&name["family"]).unwrap_or_default()
        );
        Some(full.trim().to_owned()).filter(|s| !s.is_empty())
    })
}

fn phone(resource: &Value) -> Option<String> {
    array(&resource["telecom"])
        .filter(|t| t["system"].as_str() == Some("phone"))
        .find_map(|t| text(&t["value"]))
}

/// `tel:` with only the digits and a leading `+`, so nothing else reaches the URI.
fn tel_uri(phone: &str) -> String {
    let digits: String = phone
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '+')
        .collect();
    format!("tel:{digits}")
}

fn position(location: &Value) -> Option<(f64, f64)> {
    let p = &location["position"];
    Some((p["latitude"].as_f64()?, p["longitude"].as_f64()?))
}

fn language_name(code: &str) -> &str {
    let primary = code.split('-').next().unwrap_or(code);
    LANGUAGES
        .iter()
        .find(|(c, _)| *c == primary)
        .map_or(code, |(_, name)| name)
}

fn array(value: &Value) -> impl Iterator<Item = &Value> {
    value.as_array().into_iter().flatten()
}

fn text(value: &Value) -> Option<String> {
    value
        .as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}
