//! Enrollment and app registration on the user pool.
//!
//! Members are created by the plan, never by sign-up (`AllowAdminCreateUserOnly`). The
//! username is an opaque UUID because `cognito:username` appears in every token and
//! cannot be suppressed; the email is an attribute (and sign-in alias), marked verified
//! because the plan vouches for it, and no invitation is sent.

use aws_sdk_cognitoidentityprovider::Client;
use aws_sdk_cognitoidentityprovider::types::{
    AttributeType, ExplicitAuthFlowsType, MessageActionType, PreventUserExistenceErrorTypes,
    TimeUnitsType, TokenValidityUnitsType,
};
use fhir_store::KeyValueStore;
use member_signin::triggers::PATIENT_ATTRIBUTE;
use member_signin::{CognitoClientLink, link_cognito_client};

use crate::AppClientCredentials;

/// A provisioning call failed.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("invalid input: {0}")]
    Invalid(&'static str),
    #[error("no secure random source")]
    Random,
    #[error("cognito: {0}")]
    Cognito(String),
    #[error("the app registry could not be written: {0}")]
    Registry(String),
}

fn cognito<E: std::fmt::Display>(error: E) -> ProvisionError {
    ProvisionError::Cognito(error.to_string())
}

/// A random (version 4) UUID from the CSPRNG.
fn uuid_v4() -> Result<String, ProvisionError> {
    let mut b = [0u8; 16];
    aws_lc_rs::rand::fill(&mut b).map_err(|_| ProvisionError::Random)?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}

/// Creates the member's user: opaque username, verified email, `custom:patient_id`,
/// no invitation, confirmed. Returns the username.
pub async fn provision_member(
    client: &Client,
    user_pool_id: &str,
    email: &str,
    patient_id: &str,
) -> Result<String, ProvisionError> {
    let email = email.trim().to_lowercase();
    if !email.contains('@') || email.contains(['"', '\\']) {
        return Err(ProvisionError::Invalid("email"));
    }
    let username = uuid_v4()?;
    let attribute = |name: &str, value: &str| {
        AttributeType::builder()
            .name(name)
            .value(value)
            .build()
            .map_err(cognito)
    };
    client
        .admin_create_user()
        .user_pool_id(user_pool_id)
        .username(&username)
        .user_attributes(attribute("email", &email)?)
        .user_attributes(attribute("email_verified", "true")?)
        .user_attributes(attribute(PATIENT_ATTRIBUTE, patient_id)?)
        .message_action(MessageActionType::Suppress)
        .send()
        .await
        .map_err(|e| cognito(e.into_service_error()))?;
    confirm_without_password(client, user_pool_id, &username).await?;
    Ok(username)
}

/// Moves the new user out of FORCE_CHANGE_PASSWORD (where Cognito would answer custom
/// auth with NEW_PASSWORD_REQUIRED) by setting a permanent random password that nobody
/// ever learns: the app clients allow no password flow, so only custom auth signs in.
async fn confirm_without_password(
    client: &Client,
    user_pool_id: &str,
    username: &str,
) -> Result<(), ProvisionError> {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| ProvisionError::Random)?;
    // The suffix satisfies any password policy's character classes.
    let password = format!(
        "{}Aa1!",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    client
        .admin_set_user_password()
        .user_pool_id(user_pool_id)
        .username(username)
        .password(password)
        .permanent(true)
        .send()
        .await
        .map_err(|e| cognito(e.into_service_error()))?;
    Ok(())
}

/// The username and Patient id of the member with this email, if enrolled.
pub async fn find_member(
    client: &Client,
    user_pool_id: &str,
    email: &str,
) -> Result<Option<(String, String)>, ProvisionError> {
    let email = email.trim().to_lowercase();
    // The filter is a quoted string: refuse what could break out of it.
    if email.contains(['"', '\\']) {
        return Err(ProvisionError::Invalid("email"));
    }
    let out = client
        .list_users()
        .user_pool_id(user_pool_id)
        .filter(format!("email = \"{email}\""))
        .limit(2)
        .send()
        .await
        .map_err(|e| cognito(e.into_service_error()))?;
    let Some(user) = out.users.unwrap_or_default().into_iter().next() else {
        return Ok(None);
    };
    let patient = user
        .attributes()
        .iter()
        .find(|a| a.name() == PATIENT_ATTRIBUTE)
        .and_then(|a| a.value().map(str::to_owned));
    Ok(user.username.zip(patient))
}

/// The app-client settings of member-auth.md §1.3.
#[derive(Debug, Clone)]
pub struct AppClientSettings {
    pub access_token_minutes: i32,
    pub refresh_token_days: i32,
    pub auth_session_minutes: i32,
}

impl Default for AppClientSettings {
    fn default() -> Self {
        AppClientSettings {
            access_token_minutes: 60,
            refresh_token_days: 90,
            auth_session_minutes: 15,
        }
    }
}

/// Creates the Cognito app client of one third-party app: a secret (held only by the
/// authorization server), custom auth and refresh only, no OAuth flows or callback
/// URLs, `PreventUserExistenceErrors`, token revocation. Its id is Cognito's; see
/// [`create_linked_app_client`] for the registry link.
pub async fn create_app_client(
    client: &Client,
    user_pool_id: &str,
    app_name: &str,
    settings: &AppClientSettings,
) -> Result<AppClientCredentials, ProvisionError> {
    let units = TokenValidityUnitsType::builder()
        .access_token(TimeUnitsType::Minutes)
        .id_token(TimeUnitsType::Minutes)
        .refresh_token(TimeUnitsType::Days)
        .build();
    let out = client
        .create_user_pool_client()
        .user_pool_id(user_pool_id)
        .client_name(app_name)
        .generate_secret(true)
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowCustomAuth)
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowRefreshTokenAuth)
        .allowed_o_auth_flows_user_pool_client(false)
        .prevent_user_existence_errors(PreventUserExistenceErrorTypes::Enabled)
        .enable_token_revocation(true)
        .auth_session_validity(settings.auth_session_minutes)
        .access_token_validity(settings.access_token_minutes)
        .id_token_validity(settings.access_token_minutes)
        .refresh_token_validity(settings.refresh_token_days)
        .token_validity_units(units)
        .read_attributes("email")
        .send()
        .await
        .map_err(|e| cognito(e.into_service_error()))?;
    let created = out
        .user_pool_client
        .ok_or_else(|| ProvisionError::Cognito("no client in the reply".into()))?;
    match (created.client_id, created.client_secret) {
        (Some(client_id), Some(client_secret)) => Ok(AppClientCredentials {
            client_id,
            client_secret,
        }),
        _ => Err(ProvisionError::Cognito(
            "the client has no id or secret".into(),
        )),
    }
}

/// Deletes a Cognito app client (an app was disabled): no sign-in, refresh or token can
/// use it again. `Ok(false)`: it was already gone.
pub async fn delete_app_client(
    client: &Client,
    user_pool_id: &str,
    cognito_client_id: &str,
) -> Result<bool, ProvisionError> {
    use aws_sdk_cognitoidentityprovider::operation::delete_user_pool_client::DeleteUserPoolClientError;
    match client
        .delete_user_pool_client()
        .user_pool_id(user_pool_id)
        .client_id(cognito_client_id)
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(error) => match error.into_service_error() {
            DeleteUserPoolClientError::ResourceNotFoundException(_) => Ok(false),
            other => Err(cognito(other)),
        },
    }
}

/// Creates the Cognito app client of the app `app_id` (our SMART client id) and writes
/// its link record, so the triggers resolve Cognito's id to the app and the
/// authorization server finds the secret. The client is named after `app_id`, which
/// always fits Cognito's client-name pattern (app names may not). Returns the Cognito
/// client id, which the caller stores in the app record.
///
/// If writing the link fails the client is left unused (no app points to it) and
/// the error says so; registering again creates a fresh one.
pub async fn create_linked_app_client<K: KeyValueStore + ?Sized>(
    client: &Client,
    user_pool_id: &str,
    kv: &K,
    app_id: &str,
    settings: &AppClientSettings,
) -> Result<String, ProvisionError> {
    let created = create_app_client(client, user_pool_id, app_id, settings).await?;
    let link = CognitoClientLink {
        app_id: app_id.to_owned(),
        client_secret: created.client_secret,
    };
    link_cognito_client(kv, &created.client_id, &link)
        .await
        .map_err(|e| ProvisionError::Registry(e.to_string()))?;
    Ok(created.client_id)
}

#[cfg(test)]
mod tests {
    #[test]
    fn usernames_are_version_4_uuids() {
        let id = super::uuid_v4().unwrap_or_default();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_ne!(id, super::uuid_v4().unwrap_or_default());
    }
}
