//! `POST /token` with `grant_type=client_credentials`: SMART Backend Services. The
//! checks live in `backend-auth`; this maps its answer onto the token endpoint's.

use bytes::Bytes;
use fhir_store::{KeyValueStore, ResourceStore};
use http::{Response, StatusCode};
use member_signin::SignIn;

use crate::error::{OAuthCode, OAuthError};
use crate::respond::{Params, json_response, no_store};
use crate::{AuthServer, unix_now};

impl<S, L> AuthServer<S, L>
where
    S: ResourceStore + KeyValueStore + 'static,
    L: SignIn + 'static,
{
    pub(crate) async fn backend_token(
        &self,
        params: &Params,
    ) -> Result<Response<Bytes>, OAuthError> {
        for name in [
            "client_assertion",
            "client_assertion_type",
            "scope",
            "client_secret",
        ] {
            if params.repeated(name) {
                return Err(OAuthError::invalid_request("parameters must not repeat"));
            }
        }
        if params.one("client_secret").is_some() {
            return Err(OAuthError::invalid_request(
                "backend clients authenticate with a client assertion, not a secret",
            ));
        }
        let token_endpoint = fhir_api::OAuthUris::for_issuer(&self.config.issuer).token;
        let at = backend_auth::grant::Issuance {
            issuer: &self.config.issuer,
            token_endpoint: &token_endpoint,
            signer: self.signer.as_ref(),
            now: unix_now(),
        };
        let request = backend_auth::GrantRequest {
            grant_type: params.one("grant_type"),
            client_assertion_type: params.one("client_assertion_type"),
            client_assertion: params.one("client_assertion"),
            scope: params.one("scope"),
        };
        match backend_auth::client_credentials(
            self.store.as_ref(),
            &self.backend_keys,
            &at,
            &request,
        )
        .await
        {
            Ok(token) => {
                let body = serde_json::to_value(&token).unwrap_or_default();
                let mut response = json_response(StatusCode::OK, &body);
                no_store(&mut response);
                Ok(response)
            }
            Err(error) => {
                tracing::info!(target: "audit", reason = %error, event = "backend_token.refused", "backend token refused");
                let (code, description) = match &error {
                    backend_auth::BackendAuthError::InvalidRequest(text) => {
                        (OAuthCode::InvalidRequest, *text)
                    }
                    backend_auth::BackendAuthError::UnsupportedGrantType => {
                        (OAuthCode::UnsupportedGrantType, "unsupported grant type")
                    }
                    // One answer for every failed check: which one failed is logged.
                    backend_auth::BackendAuthError::InvalidClient(_) => {
                        (OAuthCode::InvalidClient, "client authentication failed")
                    }
                    backend_auth::BackendAuthError::InvalidScope(text) => {
                        (OAuthCode::InvalidScope, *text)
                    }
                    _ => (
                        OAuthCode::ServerError,
                        "the server could not complete the request",
                    ),
                };
                Err(OAuthError::new(code, description))
            }
        }
    }
}
