//! Search execution: choose the partition, page through it, match, include, seal the cursor.

use std::collections::HashSet;

use bytes::Bytes;
use fhir::clock::unix_now;
use fhir::{Reference, ResourceType};
use fhir_search::{Handling, SearchRequest};
use fhir_store::KeyValueStore;
use fhir_store::{ListQuery, Partition, ResourceRecord, ResourceStore, SortKey};
use http::{HeaderMap, Response, StatusCode};
use smart_auth::{Access, Cursor, CursorBinding, Interaction, Principal, may_access};

use crate::bundle::{SearchMode, SearchsetWriter};
use crate::negotiate::JsonFlavour;
use crate::params::{self, Params};
use crate::{ApiError, ResourceApi, json_response};

/// Our paging parameter. It carries a sealed cursor and is never a search criterion.
const CURSOR_PARAM: &str = "_cursor";
/// How many partition entries one storage call asks for once filtering is involved.
const FILTER_BATCH: usize = 100;
/// The most ids one `_id` search may name; it is served by direct reads, not a query.
const MAX_IDS: usize = 100;

/// How one search reaches storage. Every plan is key-based: direct reads or one
/// partition listing, never a scan.
enum Plan {
    /// Nothing can match (e.g. `patient=` names another member).
    Empty,
    /// `_id` names the candidates: read them directly.
    Ids(Vec<String>),
    /// Page through one partition and match the remaining criteria in memory.
    Partition {
        partition: Partition,
        descending: bool,
    },
}

/// One page of matches and where the next page starts.
struct Matches {
    records: Vec<(SortKey, ResourceRecord)>,
    next: Option<SortKey>,
}

impl<S: ResourceStore + KeyValueStore> ResourceApi<S> {
    pub(crate) async fn search(
        &self,
        principal: &Principal,
        mut params: Params,
        headers: &HeaderMap,
        flavour: JsonFlavour,
    ) -> Result<Response<Bytes>, ApiError> {
        self.require_scope(principal, Interaction::Search)?;
        let cursor = params::take(&mut params, CURSOR_PARAM);
        let request = fhir_search::parse_search(self.resource_type, &params, handling(headers))?;
        let count = request
            .count()
            .map_or(self.config.default_count, |c| c as usize)
            .clamp(1, self.config.max_count);
        let binding = self.binding(principal, &request);
        let after = match &cursor {
            Some(token) => Some(SortKey(
                self.sealer
                    .open(token, &binding, std::time::SystemTime::now())
                    .map_err(|_| {
                        ApiError::BadRequest("the paging cursor is invalid or has expired".into())
                    })?
                    .position,
            )),
            None => None,
        };

        let matches = self.find_matches(principal, &request, count, after).await?;
        let included = self
            .find_includes(principal, &request, &matches.records)
            .await?;

        let query = request.canonical_query();
        let self_link = self.link(&query, count, cursor.as_deref());
        let next_link = matches.next.map(|position| {
            let sealed = self.sealer.seal(&Cursor {
                binding: binding.clone(),
                position: position.0,
                expires_at: unix_now() + self.config.cursor_lifetime.as_secs() as i64,
            })?;
            Ok::<_, ApiError>(self.link(&query, count, Some(&sealed)))
        });
        let next_link = next_link.transpose()?;
        let total = (cursor.is_none() && next_link.is_none()).then_some(matches.records.len());
        let mut writer = SearchsetWriter::new(
            &self.config.base_url,
            &self_link,
            next_link.as_deref(),
            total,
        );
        for (_, record) in &matches.records {
            writer.push(record, SearchMode::Match);
        }
        for record in &included {
            writer.push(record, SearchMode::Include);
        }
        let mut response = json_response(StatusCode::OK, Bytes::from(writer.finish()), flavour);
        response.extensions_mut().insert(crate::ResourcesReturned(
            matches.records.len() + included.len(),
        ));
        Ok(response)
    }

    /// A cursor is only good for the same client, member, type and query.
    fn binding(&self, principal: &Principal, request: &SearchRequest) -> CursorBinding {
        CursorBinding {
            client_id: principal.client_id.clone(),
            patient: principal.patient.clone(),
            resource_type: self.resource_type.as_str().to_owned(),
            query: request.canonical_query(),
        }
    }

    fn link(&self, query: &str, count: usize, cursor: Option<&str>) -> String {
        let mut link = format!("{}/{}?", self.config.base_url, self.resource_type);
        if !query.is_empty() {
            link.push_str(query);
            link.push('&');
        }
        link.push_str(&format!("_count={count}"));
        if let Some(cursor) = cursor {
            link.push_str(&format!("&{CURSOR_PARAM}={cursor}"));
        }
        link
    }

    fn plan(&self, principal: &Principal, request: &SearchRequest) -> Result<Plan, ApiError> {
        let resource_type = self.resource_type;
        if resource_type.is_member_owned() {
            // Search narrowing: a member-owned search only ever looks inside the token's
            // own compartment. Naming another member finds nothing, exactly as if that
            // member did not exist.
            if let Some(patients) = request.patient_ids()
                && !patients.contains(&principal.patient)
            {
                return Ok(Plan::Empty);
            }
        }
        if let Some(ids) = request.ids() {
            if ids.len() > MAX_IDS {
                return Err(ApiError::BadRequest(format!(
                    "_id may name at most {MAX_IDS} ids"
                )));
            }
            return Ok(Plan::Ids(ids));
        }
        let plan = if resource_type.is_member_owned() {
            Plan::Partition {
                partition: Partition::Compartment {
                    patient: principal.patient.clone(),
                    resource_type,
                },
                descending: true,
            }
        } else if let Some(hint) = request.lookup_hint() {
            Plan::Partition {
                partition: Partition::Lookup {
                    resource_type,
                    param: hint.param.to_owned(),
                    prefix: hint.prefix,
                },
                descending: false,
            }
        } else {
            Plan::Partition {
                partition: Partition::Type(resource_type),
                descending: true,
            }
        };
        Ok(plan)
    }

    async fn find_matches(
        &self,
        principal: &Principal,
        request: &SearchRequest,
        count: usize,
        after: Option<SortKey>,
    ) -> Result<Matches, ApiError> {
        let candidates = match self.plan(principal, request)? {
            Plan::Empty => {
                return Ok(Matches {
                    records: Vec::new(),
                    next: None,
                });
            }
            Plan::Ids(ids) => self.candidates_by_id(&ids).await?,
            Plan::Partition {
                partition,
                descending,
            } => {
                return self
                    .page_through(principal, request, count, after, partition, descending)
                    .await;
            }
        };
        // Direct reads: order them like a partition listing and page in memory.
        let mut records: Vec<(SortKey, ResourceRecord)> = candidates
            .into_iter()
            .filter(|record| self.is_match(principal, request, record))
            .map(|record| (listing_key(&record), record))
            .collect();
        records.sort_by(|a, b| b.0.cmp(&a.0));
        records.retain(|(key, _)| after.as_ref().is_none_or(|after| key < after));
        Ok(take_page(records, count))
    }

    async fn candidates_by_id(&self, ids: &[String]) -> Result<Vec<ResourceRecord>, ApiError> {
        let keys: Vec<(ResourceType, String)> = ids
            .iter()
            .filter(|id| fhir::is_valid_id(id))
            .map(|id| (self.resource_type, id.clone()))
            .collect();
        Ok(self.store.get_many(&keys).await?)
    }

    async fn page_through(
        &self,
        principal: &Principal,
        request: &SearchRequest,
        count: usize,
        mut after: Option<SortKey>,
        partition: Partition,
        descending: bool,
    ) -> Result<Matches, ApiError> {
        let (from, to) = request.last_updated_bounds();
        let keyed_by_time = !matches!(partition, Partition::Lookup { .. });
        let mut found: Vec<(SortKey, ResourceRecord)> = Vec::with_capacity(count + 1);
        let mut seen: HashSet<String> = HashSet::new();
        let mut limit = count + 1;
        loop {
            let mut query = ListQuery::new(partition.clone(), limit);
            query.after = after.clone();
            query.descending = descending;
            if keyed_by_time {
                query.last_updated_from = from.clone();
                query.last_updated_to = to.clone();
            }
            let page = ResourceStore::list(self.store.as_ref(), query).await?;
            for (key, record) in page.entries {
                after = Some(key.clone());
                // A look-up partition lists a resource once per matching term.
                if !seen.insert(record.id.clone()) || !self.is_match(principal, request, &record) {
                    continue;
                }
                found.push((key, record));
                if found.len() > count {
                    return Ok(take_page(found, count));
                }
            }
            if !page.more {
                return Ok(Matches {
                    records: found,
                    next: None,
                });
            }
            limit = FILTER_BATCH;
        }
    }

    /// The search criteria and the access rule, for one candidate.
    fn is_match(
        &self,
        principal: &Principal,
        request: &SearchRequest,
        record: &ResourceRecord,
    ) -> bool {
        !record.deleted
            && record.resource_type == self.resource_type
            && request.matches(&record.id, &record.last_updated, &record.index)
            && may_access(
                principal,
                record.resource_type,
                record.index.compartment.as_deref(),
                Interaction::Search,
            ) == Access::Allowed
    }

    /// `_include` and `_include:iterate`: every included resource passes the same scope
    /// and compartment rule as a direct read, or it is silently left out.
    async fn find_includes(
        &self,
        principal: &Principal,
        request: &SearchRequest,
        matches: &[(SortKey, ResourceRecord)],
    ) -> Result<Vec<ResourceRecord>, ApiError> {
        let mut seen: HashSet<(ResourceType, String)> = matches
            .iter()
            .map(|(_, r)| (r.resource_type, r.id.clone()))
            .collect();
        let mut wanted: Vec<Reference> = Vec::new();
        for include in request.includes() {
            for (_, record) in matches {
                wanted.extend(include.targets_of(&record.index));
            }
        }
        let mut included = self.fetch_visible(principal, wanted, &mut seen).await?;
        // `:iterate` applies to what the previous round added; two rounds cover
        // EOB → Coverage → payor, and the loop stops as soon as nothing new appears.
        let mut frontier: Vec<ResourceRecord> = matches
            .iter()
            .map(|(_, r)| r.clone())
            .chain(included.iter().cloned())
            .collect();
        for _round in 0..3 {
            let mut wanted = Vec::new();
            for include in request.iterate_includes() {
                for record in frontier
                    .iter()
                    .filter(|r| r.resource_type == include.source)
                {
                    wanted.extend(include.targets_of(&record.index));
                }
            }
            if wanted.is_empty() {
                break;
            }
            frontier = self.fetch_visible(principal, wanted, &mut seen).await?;
            if frontier.is_empty() {
                break;
            }
            included.extend(frontier.iter().cloned());
        }
        Ok(included)
    }

    async fn fetch_visible(
        &self,
        principal: &Principal,
        references: Vec<Reference>,
        seen: &mut HashSet<(ResourceType, String)>,
    ) -> Result<Vec<ResourceRecord>, ApiError> {
        let mut keys = Vec::new();
        for reference in references {
            let key = (reference.resource_type, reference.id);
            if seen.insert(key.clone()) {
                keys.push(key);
            }
        }
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let records = self.store.get_many(&keys).await?;
        Ok(records
            .into_iter()
            .filter(|record| {
                !record.deleted
                    && may_access(
                        principal,
                        record.resource_type,
                        record.index.compartment.as_deref(),
                        Interaction::Read,
                    ) == Access::Allowed
            })
            .collect())
    }
}

/// The position of a directly read record, ordered like a time-keyed partition.
fn listing_key(record: &ResourceRecord) -> SortKey {
    SortKey(format!("{}#{}", record.last_updated, record.id))
}

/// Keeps `count` matches; a further match means another page starts after the last kept.
fn take_page(mut records: Vec<(SortKey, ResourceRecord)>, count: usize) -> Matches {
    if records.len() <= count {
        return Matches {
            records,
            next: None,
        };
    }
    records.truncate(count);
    let next = records.last().map(|(key, _)| key.clone());
    Matches { records, next }
}

/// `Prefer: handling=strict` turns ignored parameters into errors.
pub fn handling(headers: &HeaderMap) -> Handling {
    let strict = headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split([',', ';']))
        .any(|pref| pref.trim().eq_ignore_ascii_case("handling=strict"));
    if strict {
        Handling::Strict
    } else {
        Handling::Lenient
    }
}
