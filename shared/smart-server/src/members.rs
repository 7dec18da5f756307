//! The member's connected-apps page (`/connected-apps`), behind the same sign-in.
//!
//! A member with no session is sent through the ordinary pages (email, identity
//! questions, one-time code) for the built-in "member portal" client; the consent step
//! is answered for them with a short grant to read their own Consents. The result is a
//! member session (HttpOnly cookie, 30 minutes, its own CSRF token). Apps never see it.

use bytes::Bytes;
use fhir_store::{KeyValueStore, ResourceStore};
use http::{Request, Response, StatusCode};
use member_consent::grants;
use member_consent::{GrantError, GrantStatus, Sharing};
use member_signin::SignIn;
use serde::{Deserialize, Serialize};
use smart_auth::ScopeSet;

use crate::apps::PORTAL_CLIENT_ID;
use crate::authorize::{Purpose, TXN_COOKIE};
use secrets::constant_time_eq;

use crate::crypto::{hash_secret, random_secret};
use crate::pages::{AccessRow, ConnectedAppsPage, GrantRow, P2pRequestRow, page};
use crate::respond::{Params, cookie, redirect};
use crate::{AuthServer, secs, unix_now};
use payer_to_payer::asking::{self, ExchangeRequest, RequestState, Terms};

const SESSION_NAMESPACE: &str = "member-session";
const SESSION_COOKIE: &str = "pa_member";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct MemberSession {
    patient: String,
    grant_id: String,
    csrf: String,
}

type Page = Response<Bytes>;

impl<S, L> AuthServer<S, L>
where
    S: ResourceStore + KeyValueStore + 'static,
    L: SignIn + 'static,
{
    /// `GET /connected-apps`.
    pub(crate) async fn connected_apps(&self, request: &Request<Bytes>) -> Page {
        match self.member_session(request).await {
            Some(session) => self.render_apps(&session, None).await,
            None => self.begin_portal_sign_in().await,
        }
    }

    /// A connected-apps form: the member's session and the form, once its CSRF token
    /// matched; otherwise the page to answer with (sign in again, or expired form).
    async fn member_form(&self, request: &Request<Bytes>) -> Result<(MemberSession, Params), Page> {
        let Some(session) = self.member_session(request).await else {
            return Err(redirect("/connected-apps", true));
        };
        let form = Params::of_request(request);
        if !constant_time_eq(form.one("csrf").unwrap_or_default(), &session.csrf) {
            return Err(crate::pages::error_page(
                StatusCode::FORBIDDEN,
                "This form has expired",
                "For your safety we could not accept this form. Reload the page and try again.",
            ));
        }
        Ok((session, form))
    }

    /// `POST /connected-apps/revoke`: ends one of the member's own grants.
    pub(crate) async fn member_revoke(&self, request: &Request<Bytes>) -> Page {
        let (session, form) = match self.member_form(request).await {
            Ok(checked) => checked,
            Err(page) => return page,
        };
        let grant_id = form.one("grant").unwrap_or_default();
        // Someone else's grant id looks exactly like an unknown one.
        let notice = match grants::get(self.store.as_ref(), grant_id).await {
            Ok(Some(grant))
                if grant.patient.as_deref() == Some(session.patient.as_str())
                    && grant.client_id != PORTAL_CLIENT_ID =>
            {
                match grants::revoke(self.store.as_ref(), grant_id, "member").await {
                    Ok(_) => format!(
                        "{} is disconnected. It can no longer read your data.",
                        grant.app_name
                    ),
                    Err(error) => return self.fault(error.into()),
                }
            }
            Ok(_) => "That app was not found.".to_owned(),
            Err(error) => return self.fault(error.into()),
        };
        self.render_apps(&session, Some(&notice)).await
    }

    /// `POST /connected-apps/provider-access` and `/connected-apps/payer-to-payer`: the
    /// member turns one kind of sharing on (`choice=opt-in`) or off (`choice=opt-out`).
    pub(crate) async fn member_sharing(&self, request: &Request<Bytes>, kind: Sharing) -> Page {
        let (session, form) = match self.member_form(request).await {
            Ok(checked) => checked,
            Err(page) => return page,
        };
        let share = match form.one("choice") {
            Some("opt-in") => true,
            Some("opt-out") => false,
            _ => return self.render_apps(&session, None).await,
        };
        let by = member_consent::ChangedBy::Member;
        if let Err(error) = kind
            .set(self.store.as_ref(), &session.patient, share, by)
            .await
        {
            return self.fault(error.into());
        }
        self.render_apps(&session, Some(sharing_notice(kind, share)))
            .await
    }

    /// `POST /connected-apps/payer-to-payer/request`: the member asks this plan to get
    /// their records from one of the other plans it recorded (`payer`), with the card
    /// number there (`card`), covered until recently (`coverage=previous`) or now too
    /// (`coverage=concurrent`), and all data (`all-data=yes`, their 42 CFR Part 2
    /// consent) or only what is not sensitive. Only with their Payer-to-Payer opt-in.
    /// The request is the one operators make ([`asking::request_when_due`]); the
    /// scheduled run asks the other plan.
    pub(crate) async fn member_p2p_request(&self, request: &Request<Bytes>) -> Page {
        let (session, form) = match self.member_form(request).await {
            Ok(checked) => checked,
            Err(page) => return page,
        };
        match self.record_p2p_request(&session.patient, &form).await {
            Ok(notice) => self.render_apps(&session, Some(&notice)).await,
            Err(error) => self.fault(error),
        }
    }

    async fn record_p2p_request(
        &self,
        patient: &str,
        form: &Params,
    ) -> Result<String, crate::ServerError> {
        let store = self.store.as_ref();
        if !Sharing::PayerToPayer.is_on(store, patient).await? {
            return Ok("First say yes to sharing with your other health plans; then we can ask them for your records.".into());
        }
        let Some(payer) = asking::payer(store, form.one("payer").unwrap_or_default()).await? else {
            return Ok("Choose one of the health plans in the list.".into());
        };
        let card = form.one("card").unwrap_or_default().trim();
        if !valid_card(card) {
            return Ok("The member ID must be 1 to 40 letters, numbers, spaces or dashes, as printed on your card. Nothing was sent.".into());
        }
        let terms = Terms {
            old_member_id: card.to_owned(),
            all_data: form.one("all-data") == Some("yes"),
            concurrent: form.one("coverage") == Some("concurrent"),
        };
        let (all_data, concurrent) = (terms.all_data, terms.concurrent);
        let now = unix_now();
        let asked = asking::request_when_due(store, patient, &payer.name, terms, now).await?;
        // Which plan, and how; never the member or the card.
        tracing::info!(target: "audit", event = "p2p.member_request", payer = %payer.name, concurrent, all_data, "member asked for their records from another plan");
        Ok(if asked.next_attempt_at > now {
            format!(
                "Thank you. Your coverage with us starts on {}; we will ask {} for your records then.",
                day_of(asked.next_attempt_at),
                payer.name
            )
        } else {
            format!(
                "Thank you. We will ask {} for your records shortly. Their status is shown below.",
                payer.name
            )
        })
    }

    async fn render_apps(&self, session: &MemberSession, notice: Option<&str>) -> Page {
        let list = match grants::list_for_patient(self.store.as_ref(), &session.patient).await {
            Ok(list) => list,
            Err(error) => return self.fault(error.into()),
        };
        let history = self.access_history(&session.patient, &list).await;
        let rows = list
            .into_iter()
            .filter(|g| g.client_id != PORTAL_CLIENT_ID)
            .filter(|g| matches!(g.status, GrantStatus::Active | GrantStatus::Inactive))
            .map(|g| GrantRow {
                active: g.is_usable(unix_now()),
                status: if g.is_usable(unix_now()) {
                    "Connected"
                } else {
                    "Disconnected"
                },
                since: g.created.as_str().get(..10).unwrap_or_default().to_owned(),
                app_name: g.app_name,
                id: g.id,
            })
            .collect();
        let store = self.store.as_ref();
        let settings = async {
            let providers = Sharing::ProviderAccess
                .is_on(store, &session.patient)
                .await?;
            let plans = Sharing::PayerToPayer.is_on(store, &session.patient).await?;
            Ok::<_, GrantError>((!providers, plans))
        };
        let (opted_out, p2p_opted_in) = match settings.await {
            Ok(settings) => settings,
            Err(error) => return self.fault(error.into()),
        };
        let p2p = async {
            let plans = asking::payers(store).await?;
            let requests = asking::requests_of(store, &session.patient).await?;
            Ok::<_, fhir_store::StoreError>((plans, requests))
        };
        let (other_plans, p2p_requests) = match p2p.await {
            Ok(found) => found,
            Err(error) => return self.fault(error.into()),
        };
        page(
            StatusCode::OK,
            &ConnectedAppsPage {
                csrf: &session.csrf,
                provider_access_opted_out: opted_out,
                payer_to_payer_opted_in: p2p_opted_in,
                other_plans: other_plans.into_iter().map(|p| p.name).collect(),
                payer_to_payer_requests: p2p_requests
                    .iter()
                    .map(|r| p2p_row(r, unix_now()))
                    .collect(),
                grants: rows,
                notice,
                history,
                history_days: usage_metrics::HISTORY_DAYS,
            },
        )
    }

    /// Which app read what of the member's data, from the usage records. Apps are
    /// named from the member's own grants (a disconnected app keeps its name).
    async fn access_history(
        &self,
        patient: &str,
        grants: &[member_consent::Grant],
    ) -> Option<Vec<AccessRow>> {
        let now_ms = unix_now().saturating_mul(1000);
        let apps = match usage_metrics::history::history(self.store.as_ref(), patient, now_ms).await
        {
            Ok(apps) => apps,
            Err(error) => {
                tracing::error!(%error, "access history unavailable");
                return None;
            }
        };
        let rows = apps
            .into_iter()
            .map(|app| AccessRow {
                app_name: grants
                    .iter()
                    .find(|g| g.client_id == app.client_id)
                    .map_or_else(|| app.client_id.clone(), |g| g.app_name.clone()),
                last_access: usage_metrics::Day::eastern_time_label(app.last_access_ms)
                    .unwrap_or_default(),
                reads: app
                    .counts
                    .iter()
                    .filter_map(|(resource_type, count)| {
                        let category = resource_type.parse::<fhir::ResourceType>().ok()?;
                        Some((crate::pages::category_label(category), *count))
                    })
                    .collect(),
            })
            .collect();
        Some(rows)
    }

    async fn member_session(&self, request: &Request<Bytes>) -> Option<MemberSession> {
        let id = cookie(request.headers(), SESSION_COOKIE)?;
        let entry = KeyValueStore::get(self.store.as_ref(), SESSION_NAMESPACE, &hash_secret(id))
            .await
            .ok()??;
        let session: MemberSession = serde_json::from_value(entry.value).ok()?;
        // The portal grant is checked like any other: revoking it ends the session.
        grants::active_for(
            self.store.as_ref(),
            &session.grant_id,
            PORTAL_CLIENT_ID,
            &session.patient,
        )
        .await
        .ok()?;
        Some(session)
    }

    async fn begin_portal_sign_in(&self) -> Page {
        let portal = match crate::apps::enabled(self.store.as_ref(), PORTAL_CLIENT_ID).await {
            Ok(Some(app)) => app,
            Ok(None) => return self.expired_page(),
            Err(error) => return self.fault(error),
        };
        let scope = ScopeSet::parse(&portal.scope);
        match self.new_transaction(Purpose::Portal, &portal, "/connected-apps", "", "", &scope) {
            Ok(txn) => self.begin(txn, &portal.name).await,
            Err(error) => self.fault(error),
        }
    }

    /// After a portal sign-in: the session cookie, then the list.
    pub(crate) async fn start_member_session(&self, patient: &str, grant_id: &str) -> Page {
        let (id, csrf) = match (random_secret(), random_secret()) {
            (Ok(id), Ok(csrf)) => (id, csrf),
            (Err(error), _) | (_, Err(error)) => return self.fault(error),
        };
        let session = MemberSession {
            patient: patient.to_owned(),
            grant_id: grant_id.to_owned(),
            csrf,
        };
        let lifetime = secs(self.config.member_session_lifetime);
        let stored = match serde_json::to_value(&session) {
            Ok(value) => KeyValueStore::put(
                self.store.as_ref(),
                SESSION_NAMESPACE,
                &hash_secret(&id),
                &value,
                Some(unix_now().saturating_add(lifetime)),
            )
            .await
            .map_err(crate::ServerError::from),
            Err(e) => Err(crate::ServerError::Internal(e.to_string())),
        };
        if let Err(error) = stored {
            return self.fault(error);
        }
        tracing::info!(target: "audit", event = "member.session_started", "member signed in to manage apps");
        let mut response = redirect("/connected-apps", true);
        self.set_cookie(&mut response, SESSION_COOKIE, &id, lifetime);
        self.clear_cookie(response, TXN_COOKIE)
    }
}

/// A card number as a member may type it: 1 to 40 ASCII letters, digits, spaces and
/// dashes.
fn valid_card(card: &str) -> bool {
    (1..=40).contains(&card.len())
        && card
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b' ')
}

/// `YYYY-MM-DD` of unix seconds.
fn day_of(unix_secs: i64) -> String {
    fhir::Instant::from_unix_millis(unix_secs.saturating_mul(1000))
        .and_then(|i| i.as_str().get(..10).map(str::to_owned))
        .unwrap_or_default()
}

/// One request as the member reads it.
fn p2p_row(request: &ExchangeRequest, now: i64) -> P2pRequestRow {
    let card: Vec<char> = request.old_member_id.chars().collect();
    let last = card.len().saturating_sub(4);
    let card = if last == 0 {
        request.old_member_id.clone()
    } else {
        format!("ending {}", card[last..].iter().collect::<String>())
    };
    let status = match request.state {
        RequestState::Waiting if request.progress.is_some() => {
            "That plan is preparing your records.".to_owned()
        }
        RequestState::Waiting if request.attempts > 0 => {
            "We could not reach that plan yet. We will try again.".to_owned()
        }
        RequestState::Waiting if request.received > 0 => format!(
            "Received. We will ask again on {}.",
            day_of(request.next_attempt_at)
        ),
        RequestState::Waiting if request.next_attempt_at > now => {
            format!("We will ask on {}.", day_of(request.next_attempt_at))
        }
        RequestState::Waiting => "We will ask shortly.".to_owned(),
        RequestState::Done => "Received.".to_owned(),
        RequestState::NotMatched => {
            "That plan could not find you with this member ID. Check your card and ask again."
                .to_owned()
        }
        RequestState::NotOptedIn => {
            "Not asked: sharing with other health plans was off.".to_owned()
        }
        RequestState::Failed => {
            "We could not get your records. Our staff will look into it.".to_owned()
        }
    };
    P2pRequestRow {
        plan: request.payer.clone(),
        card,
        coverage: if request.concurrent {
            "Now, too"
        } else {
            "Until recently"
        },
        records: if request.received > 0 {
            request.received.to_string()
        } else {
            "None yet".to_owned()
        },
        status,
    }
}

/// What the page says once the member changed a kind of sharing.
fn sharing_notice(kind: Sharing, on: bool) -> &'static str {
    match (kind, on) {
        (Sharing::ProviderAccess, true) => {
            "Done: your in-network providers can get your data again."
        }
        (Sharing::ProviderAccess, false) => {
            "Done: providers can no longer get your data through Provider Access."
        }
        (Sharing::PayerToPayer, true) => {
            "Done: when you join another health plan, or have two at once, that plan can get your data from us."
        }
        (Sharing::PayerToPayer, false) => {
            "Done: other health plans can no longer get your data from us."
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_members_own_portal_is_not_counted_as_an_app_they_chose() {
        let portal = crate::apps::PORTAL_CLIENT_ID;
        assert!(usage_metrics::event::NOT_APP_CLIENTS.contains(&portal));
    }
}
