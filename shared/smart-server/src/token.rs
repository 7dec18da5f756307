//! `/token`, `/revoke` and `/introspect` (RFC 6749, 7636, 7009, 7662; SMART §4.2, §4.4).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use fhir_store::{KeyValueStore, ResourceStore};
use http::{Request, Response, StatusCode};
use member_consent::grants::{self, Grant};
use member_signin::SignIn;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use smart_auth::{AccessClaims, ScopeSet, TOKEN_USE_ACCESS, mint_with, sign_jwt_with};

use crate::apps::{self, App};
use crate::authorize::{CODE_NAMESPACE, CodeRecord};
use crate::crypto::{hash_secret, pkce_matches, random_secret};
use crate::error::{OAuthCode, OAuthError};
use crate::respond::{Params, is_form, json_response, no_store};
use crate::{AuthServer, ServerError, secs, unix_now};

const REFRESH_NAMESPACE: &str = "refresh";
/// Hashes of redeemed codes and rotated refresh handles, kept to detect replay.
const USED_CODE_NAMESPACE: &str = "auth-code-used";
const USED_REFRESH_NAMESPACE: &str = "refresh-used";
/// How long a redeemed code is remembered for replay detection.
const USED_CODE_MEMORY: i64 = 24 * 3600;

/// What a refresh handle stands for (KV `refresh`, keyed by the handle's hash).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RefreshRecord {
    client_id: String,
    grant_id: String,
    patient: String,
    subject: String,
    scope: String,
}

/// What an issuance is about: one grant, one member, one app, some scopes.
struct Issue<'a> {
    app: &'a App,
    grant: &'a Grant,
    patient: &'a str,
    subject: &'a str,
    scope: ScopeSet,
}

#[derive(Serialize)]
struct IdTokenClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: i64,
    iat: i64,
    #[serde(rename = "fhirUser")]
    fhir_user: String,
}

type Reply = Response<Bytes>;

impl<S, L> AuthServer<S, L>
where
    S: ResourceStore + KeyValueStore + 'static,
    L: SignIn + 'static,
{
    /// `POST /token`.
    pub(crate) async fn token(&self, request: &Request<Bytes>) -> Reply {
        match self.token_inner(request).await {
            Ok(reply) => reply,
            Err(error) => {
                tracing::info!(target: "audit", error = error.code.as_str(), event = "token.refused", "token request refused");
                error.response()
            }
        }
    }

    async fn token_inner(&self, request: &Request<Bytes>) -> Result<Reply, OAuthError> {
        let params = form_params(request)?;
        // Backend services authenticate with an assertion; a member app asking for
        // client_credentials (with its id or secret) keeps getting unsupported_grant_type.
        if params.one("grant_type") == Some("client_credentials")
            && (params.one("client_assertion").is_some()
                || params.one("client_assertion_type").is_some())
        {
            return self.backend_token(&params).await;
        }
        let app = self.authenticate_client(request, &params).await?;
        match params.one("grant_type") {
            Some("authorization_code") => self.redeem_code(&app, &params).await,
            Some("refresh_token") => self.refresh(&app, &params).await,
            Some(_) => Err(OAuthError::new(
                OAuthCode::UnsupportedGrantType,
                "only authorization_code, refresh_token and client_credentials",
            )),
            None => Err(OAuthError::invalid_request("grant_type is required")),
        }
    }

    /// Client authentication: `client_secret_basic`, `client_secret_post`, or `none`
    /// (public clients send only `client_id`). Sending both Basic and a body secret is a
    /// malformed request; a public client presenting a secret, an unknown or disabled
    /// client and a wrong secret are all `invalid_client`.
    pub(crate) async fn authenticate_client(
        &self,
        request: &Request<Bytes>,
        params: &Params,
    ) -> Result<App, OAuthError> {
        let basic = basic_credentials(request)?;
        let body_secret = params.one("client_secret");
        if params.repeated("client_id") || params.repeated("client_secret") {
            return Err(OAuthError::invalid_request("parameters must not repeat"));
        }
        let (client_id, secret) = match (&basic, body_secret) {
            (Some(_), Some(_)) => {
                return Err(OAuthError::invalid_request(
                    "use one client authentication method",
                ));
            }
            (Some((id, secret)), None) => {
                if params.one("client_id").is_some_and(|body_id| body_id != id) {
                    return Err(OAuthError::invalid_request(
                        "client_id does not match the credentials",
                    ));
                }
                (id.as_str(), Some(secret.as_str()))
            }
            (None, secret) => (
                params
                    .one("client_id")
                    .ok_or_else(OAuthError::invalid_client)?,
                secret,
            ),
        };
        let app = apps::enabled(self.store.as_ref(), client_id)
            .await
            .map_err(OAuthError::from)?
            .ok_or_else(OAuthError::invalid_client)?;
        let authenticated = match (app.confidential, secret) {
            (true, Some(secret)) => app.secret_matches(secret),
            (false, None) => true,
            _ => false,
        };
        if !authenticated {
            tracing::info!(target: "audit", client_id = %app.client_id, event = "client.auth_failed", "client authentication failed");
            return Err(OAuthError::invalid_client());
        }
        Ok(app)
    }

    /// `grant_type=authorization_code`.
    async fn redeem_code(&self, app: &App, params: &Params) -> Result<Reply, OAuthError> {
        let code = params
            .one("code")
            .filter(|c| !c.is_empty() && c.len() <= 128);
        let code = code.ok_or_else(|| OAuthError::invalid_request("code is required"))?;
        let key = hash_secret(code);
        let Some(entry) = KeyValueStore::take(self.store.as_ref(), CODE_NAMESPACE, &key).await?
        else {
            self.on_code_replay(&key).await;
            return Err(OAuthError::invalid_grant(
                "the code is invalid, expired or used",
            ));
        };
        let record: CodeRecord = serde_json::from_value(entry.value)
            .map_err(|e| OAuthError::from(ServerError::Internal(e.to_string())))?;
        // Remember the redemption, so a replay can revoke what this one issues.
        let used = json!({"grant_id": record.grant_id});
        KeyValueStore::put(
            self.store.as_ref(),
            USED_CODE_NAMESPACE,
            &key,
            &used,
            Some(unix_now().saturating_add(USED_CODE_MEMORY)),
        )
        .await?;
        if record.client_id != app.client_id {
            return Err(OAuthError::invalid_grant(
                "the code was issued to another client",
            ));
        }
        if params.one("redirect_uri") != Some(record.redirect_uri.as_str()) {
            return Err(OAuthError::invalid_grant(
                "redirect_uri differs from the authorization request",
            ));
        }
        let verifier = params.one("code_verifier").unwrap_or_default();
        if !pkce_matches(verifier, &record.code_challenge) {
            return Err(OAuthError::invalid_grant(
                "code_verifier does not match the code_challenge",
            ));
        }
        let grant = self
            .usable_grant(&record.grant_id, app, &record.patient)
            .await?;
        let issue = Issue {
            app,
            grant: &grant,
            patient: &record.patient,
            subject: &record.subject,
            scope: ScopeSet::parse(&record.scope).intersection(&ScopeSet::parse(&grant.scope)),
        };
        self.issue(issue, "token.issued").await
    }

    /// A code that is not live: if it was redeemed before, this is a replay, and what
    /// the first redemption issued is revoked (RFC 6749 §4.1.2).
    async fn on_code_replay(&self, key: &str) {
        let Ok(Some(entry)) =
            KeyValueStore::get(self.store.as_ref(), USED_CODE_NAMESPACE, key).await
        else {
            return;
        };
        if let Some(grant_id) = entry.value.get("grant_id").and_then(Value::as_str) {
            tracing::warn!(target: "audit", grant_id, event = "token.code_replay", "authorization code replayed");
            if let Err(error) = grants::revoke(self.store.as_ref(), grant_id, "code-replay").await {
                tracing::error!(error = %error, "revoking after code replay failed");
            }
        }
    }

    /// `grant_type=refresh_token`: single use; a rotated handle presented again revokes
    /// the whole grant (reuse means it was stolen, or the app is broken).
    async fn refresh(&self, app: &App, params: &Params) -> Result<Reply, OAuthError> {
        let handle = params
            .one("refresh_token")
            .filter(|h| !h.is_empty() && h.len() <= 128);
        let handle =
            handle.ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
        let key = hash_secret(handle);
        let invalid =
            || OAuthError::invalid_grant("the refresh token is invalid, expired or revoked");
        let Some(entry) = KeyValueStore::get(self.store.as_ref(), REFRESH_NAMESPACE, &key).await?
        else {
            self.on_refresh_reuse(&key).await;
            return Err(invalid());
        };
        let record: RefreshRecord = serde_json::from_value(entry.value)
            .map_err(|e| OAuthError::from(ServerError::Internal(e.to_string())))?;
        // Checked before the handle is consumed: another client cannot burn it.
        if record.client_id != app.client_id {
            return Err(invalid());
        }
        let granted = ScopeSet::parse(&record.scope);
        let scope = match params.one("scope") {
            Some(asked) => {
                let asked = ScopeSet::parse(asked);
                if asked.intersection(&granted) != asked {
                    return Err(OAuthError::new(
                        OAuthCode::InvalidScope,
                        "scope must not exceed the original grant",
                    ));
                }
                asked
            }
            None => granted,
        };
        if KeyValueStore::take(self.store.as_ref(), REFRESH_NAMESPACE, &key)
            .await?
            .is_none()
        {
            self.on_refresh_reuse(&key).await;
            return Err(invalid());
        }
        let used = json!({"grant_id": record.grant_id});
        let remember = unix_now().saturating_add(secs(self.config.refresh_lifetime));
        KeyValueStore::put(
            self.store.as_ref(),
            USED_REFRESH_NAMESPACE,
            &key,
            &used,
            Some(remember),
        )
        .await?;
        let grant = self
            .usable_grant(&record.grant_id, app, &record.patient)
            .await?;
        let issue = Issue {
            app,
            grant: &grant,
            patient: &record.patient,
            subject: &record.subject,
            scope,
        };
        self.issue(issue, "token.refreshed").await
    }

    async fn on_refresh_reuse(&self, key: &str) {
        let Ok(Some(entry)) =
            KeyValueStore::get(self.store.as_ref(), USED_REFRESH_NAMESPACE, key).await
        else {
            return;
        };
        if let Some(grant_id) = entry.value.get("grant_id").and_then(Value::as_str) {
            tracing::warn!(target: "audit", grant_id, event = "token.refresh_reuse", "rotated refresh token reused");
            if let Err(error) = grants::revoke(self.store.as_ref(), grant_id, "refresh-reuse").await
            {
                tracing::error!(error = %error, "revoking after refresh reuse failed");
            }
        }
    }

    /// The grant, if still active for this app and member.
    async fn usable_grant(
        &self,
        grant_id: &str,
        app: &App,
        patient: &str,
    ) -> Result<Grant, OAuthError> {
        match grants::active_for(self.store.as_ref(), grant_id, &app.client_id, patient).await {
            Ok(grant) => Ok(grant),
            Err(member_consent::GrantError::Store(e)) => Err(e.into()),
            Err(_) => Err(OAuthError::invalid_grant("the grant is no longer active")),
        }
    }

    /// Mints the access token (and ID token, refresh handle) and answers.
    async fn issue(&self, issue: Issue<'_>, event: &'static str) -> Result<Reply, OAuthError> {
        let scope_string = issue.scope.to_scope_string();
        let mut claims = AccessClaims::for_member(
            issue.patient,
            &issue.app.client_id,
            &scope_string,
            self.config.access_token_lifetime,
        );
        claims.iss = self.config.issuer.clone();
        claims.aud = self.config.issuer.clone();
        claims.sub = issue.subject.to_owned();
        claims.grant_id = Some(issue.grant.id.clone());
        claims.token_use = TOKEN_USE_ACCESS.to_owned();
        if claims.jti.is_none() {
            claims.jti = Some(secrets::random_b64(16).map_err(ServerError::from)?);
        }
        let access_token = mint_with(self.signer.as_ref(), &claims)
            .await
            .map_err(|e| OAuthError::from(ServerError::from(e)))?;
        let mut body = json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": claims.exp - claims.iat,
            "scope": scope_string,
            "patient": issue.patient,
        });
        if issue.scope.openid() {
            body["id_token"] = json!(self.id_token(&issue, &claims).await?);
        }
        if issue.scope.offline_access() {
            body["refresh_token"] = json!(self.new_refresh_handle(&issue, &scope_string).await?);
        }
        tracing::info!(target: "audit", client_id = %issue.app.client_id, grant_id = %issue.grant.id, event, "tokens issued");
        let mut reply = json_response(StatusCode::OK, &body);
        no_store(&mut reply);
        Ok(reply)
    }

    async fn id_token(
        &self,
        issue: &Issue<'_>,
        access: &AccessClaims,
    ) -> Result<String, OAuthError> {
        let claims = IdTokenClaims {
            iss: &self.config.issuer,
            sub: issue.subject,
            aud: &issue.app.client_id,
            exp: access.exp,
            iat: access.iat,
            fhir_user: format!("{}/Patient/{}", self.config.issuer, issue.patient),
        };
        sign_jwt_with(self.signer.as_ref(), &claims)
            .await
            .map_err(|e| OAuthError::from(ServerError::from(e)))
    }

    async fn new_refresh_handle(
        &self,
        issue: &Issue<'_>,
        scope: &str,
    ) -> Result<String, OAuthError> {
        let handle = random_secret().map_err(OAuthError::from)?;
        let record = RefreshRecord {
            client_id: issue.app.client_id.clone(),
            grant_id: issue.grant.id.clone(),
            patient: issue.patient.to_owned(),
            subject: issue.subject.to_owned(),
            scope: scope.to_owned(),
        };
        let value = serde_json::to_value(&record)
            .map_err(|e| OAuthError::from(ServerError::Internal(e.to_string())))?;
        let expires = unix_now()
            .saturating_add(secs(self.config.refresh_lifetime))
            .min(issue.grant.expires_at);
        KeyValueStore::put(
            self.store.as_ref(),
            REFRESH_NAMESPACE,
            &hash_secret(&handle),
            &value,
            Some(expires),
        )
        .await?;
        Ok(handle)
    }

    /// `POST /revoke` (RFC 7009): the client authenticates; the answer is `200` whether
    /// or not the token was known or theirs. Revoking either token ends the grant.
    pub(crate) async fn revoke(&self, request: &Request<Bytes>) -> Reply {
        let result = async {
            let params = form_params(request)?;
            let app = self.authenticate_client(request, &params).await?;
            let token = params.one("token").unwrap_or_default();
            if let Some(grant_id) = self.grant_of_token(&app, token).await? {
                tracing::info!(target: "audit", client_id = %app.client_id, grant_id = %grant_id, event = "token.revoked", "revoked by the app");
                grants::revoke(self.store.as_ref(), &grant_id, "app").await.map_err(|e| OAuthError::from(ServerError::from(e)))?;
            }
            Ok::<_, OAuthError>(())
        }
        .await;
        match result {
            Ok(()) => {
                let mut reply = Response::new(Bytes::new());
                no_store(&mut reply);
                reply
            }
            Err(error) => error.response(),
        }
    }

    /// The grant behind a refresh handle or access token issued to `app`, if any.
    async fn grant_of_token(&self, app: &App, token: &str) -> Result<Option<String>, OAuthError> {
        if token.is_empty() || token.len() > 8 * 1024 {
            return Ok(None);
        }
        if !token.contains('.') {
            let key = hash_secret(token);
            let Some(entry) =
                KeyValueStore::get(self.store.as_ref(), REFRESH_NAMESPACE, &key).await?
            else {
                return Ok(None);
            };
            let Ok(record) = serde_json::from_value::<RefreshRecord>(entry.value) else {
                return Ok(None);
            };
            if record.client_id != app.client_id {
                return Ok(None);
            }
            KeyValueStore::delete(self.store.as_ref(), REFRESH_NAMESPACE, &key).await?;
            return Ok(Some(record.grant_id));
        }
        let header = format!("Bearer {token}");
        match self.verifier.verify(Some(&header)).await {
            Ok(principal) if principal.client_id == app.client_id => Ok(principal.grant_id),
            _ => Ok(None),
        }
    }

    /// `POST /introspect` (RFC 7662, SMART §4.4): for the client's own access tokens.
    /// Anything not active, or not the caller's, is exactly `{"active": false}`.
    pub(crate) async fn introspect(&self, request: &Request<Bytes>) -> Reply {
        let result = async {
            let params = form_params(request)?;
            let app = self.authenticate_client(request, &params).await?;
            Ok::<_, OAuthError>(
                self.describe(&app, params.one("token").unwrap_or_default())
                    .await,
            )
        }
        .await;
        match result {
            Ok(body) => {
                tracing::info!(target: "audit", active = body["active"] == json!(true), event = "token.introspected", "token introspected");
                let mut reply = json_response(StatusCode::OK, &body);
                no_store(&mut reply);
                reply
            }
            Err(error) => error.response(),
        }
    }

    async fn describe(&self, app: &App, token: &str) -> Value {
        let inactive = json!({"active": false});
        if token.is_empty() || token.len() > 8 * 1024 {
            return inactive;
        }
        let header = format!("Bearer {token}");
        let Ok(principal) = self.verifier.verify(Some(&header)).await else {
            return inactive;
        };
        let Some(grant_id) = principal.grant_id.as_deref() else {
            return inactive;
        };
        if principal.client_id != app.client_id {
            return inactive;
        }
        let active = grants::active_for(
            self.store.as_ref(),
            grant_id,
            &app.client_id,
            &principal.patient,
        )
        .await;
        if active.is_err() {
            return inactive;
        }
        let Some(exp) = token_exp(token) else {
            return inactive;
        };
        json!({
            "active": true,
            "scope": principal.scopes.to_scope_string(),
            "client_id": principal.client_id,
            "exp": exp,
            "patient": principal.patient,
            "iss": self.config.issuer,
            "sub": principal.subject,
            "fhirUser": format!("{}/Patient/{}", self.config.issuer, principal.patient),
            "token_type": "Bearer",
        })
    }
}

/// A verified token's `exp` (read after verification, so it can be trusted).
fn token_exp(token: &str) -> Option<i64> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice::<Value>(&bytes)
        .ok()?
        .get("exp")?
        .as_i64()
}

/// The form body of a token-endpoint request; anything else is `invalid_request`.
fn form_params(request: &Request<Bytes>) -> Result<Params, OAuthError> {
    if !is_form(request.headers()) {
        return Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    if request.body().len() > crate::respond::MAX_FORM_BYTES {
        return Err(OAuthError::invalid_request("the body is too large"));
    }
    Ok(Params::parse(request.body()))
}

/// `Authorization: Basic` client credentials (RFC 6749 §2.3.1: form-encoded id and secret).
fn basic_credentials(request: &Request<Bytes>) -> Result<Option<(String, String)>, OAuthError> {
    let mut headers = request
        .headers()
        .get_all(http::header::AUTHORIZATION)
        .iter();
    let Some(header) = headers.next() else {
        return Ok(None);
    };
    if headers.next().is_some() {
        return Err(OAuthError::invalid_request(
            "one Authorization header at most",
        ));
    }
    let header = header.to_str().map_err(|_| OAuthError::invalid_client())?;
    let Some((scheme, encoded)) = header.trim().split_once(' ') else {
        return Err(OAuthError::invalid_client());
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::invalid_client());
    }
    let decoded = STANDARD
        .decode(encoded.trim())
        .map_err(|_| OAuthError::invalid_client())?;
    let text = String::from_utf8(decoded).map_err(|_| OAuthError::invalid_client())?;
    let (id, secret) = text
        .split_once(':')
        .ok_or_else(OAuthError::invalid_client)?;
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| OAuthError::invalid_client())
    };
    Ok(Some((decode(id)?, decode(secret)?)))
}
