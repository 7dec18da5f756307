"""SMART App Launch 2.x standalone launch against `patient-access serve`, end to end.

The app side is `fhirclient` (PyPI, SMART on FHIR's Python client): it discovers the
endpoints, builds the authorize URL with PKCE S256, exchanges the code (and refreshes)
and reads FHIR resources. The member side is `member.Member`: plain HTTP through the
server-rendered pages, each field found by its label, the one-time code read from the
server's console. Each test is named after the rule it checks.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import time
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
from fhirclient import client as smart
from fhirclient.models.explanationofbenefit import ExplanationOfBenefit
from fhirclient.models.patient import Patient
from fhirclient.server import FHIRPermissionDeniedException

from conftest import GRANT_CACHE_SECONDS
from member import CODE_LINE, HTTP_TIMEOUT, Member

# Nothing listens here: the member's browser stops at this URL and hands it to the app.
REDIRECT_URI = "http://localhost:8765/callback"
SCOPE = "openid fhirUser offline_access patient/Patient.rs patient/Coverage.rs patient/ExplanationOfBenefit.rs"


class CodeReader:
    """Reads the one-time code `serve` prints instead of emailing it."""

    def __init__(self, console) -> None:
        self.console = console

    def mark(self) -> int:
        return self.console.mark()

    def __call__(self, after: int) -> str:
        return self.console.wait_for(CODE_LINE, after=after).group(1)


@dataclass
class Launch:
    client: smart.FHIRClient
    client_id: str
    secret: str | None
    member: dict
    authorize_url: str
    token_responses: list[requests.Response]
    consent_html: str

    @property
    def token_response(self) -> requests.Response:
        return self.token_responses[0]

    @property
    def token(self) -> dict:
        return self.token_response.json()

    @property
    def access_token(self) -> str:
        return self.client.server.auth.access_token


def smart_client(base_url: str, client_id: str, secret: str | None, scope: str):
    settings = {"app_id": client_id, "api_base": base_url, "redirect_uri": REDIRECT_URI, "scope": scope}
    if secret:
        settings["app_secret"] = secret
    client = smart.FHIRClient(settings=settings)
    session = client.server.session
    # fhirclient sets no timeout; every request here is bounded.
    session.request = functools.partial(session.request, timeout=HTTP_TIMEOUT)
    token_responses: list[requests.Response] = []

    def record(response, *args, **kwargs):
        if urlsplit(response.url).path == "/token":
            token_responses.append(response)

    session.hooks["response"].append(record)
    return client, token_responses


def launch(runner, client_id: str, secret: str | None, member: dict, tick: list[str] | None = None,
           scope: str = SCOPE) -> Launch:
    client, token_responses = smart_client(runner.base_url, client_id, secret, scope)
    authorize_url = client.authorize_url  # fhirclient reads /metadata for the endpoints
    person = Member(runner.base_url, member, CodeReader(runner.console))
    callback = person.connect(authorize_url, REDIRECT_URI, tick=tick)
    client.handle_callback(callback)  # state check, code + code_verifier → /token
    return Launch(client, client_id, secret, member, authorize_url, token_responses,
                  person.consent_page.response.text)


def refresh_directly(runner, launch_: Launch, refresh_token: str) -> requests.Response:
    """A refresh request the way any client sends it (for replaying old tokens, which
    fhirclient never does)."""
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    auth = None
    if launch_.secret:
        auth = (launch_.client_id, launch_.secret)
    else:
        data["client_id"] = launch_.client_id
    return requests.post(f"{runner.base_url}/token", data=data, auth=auth, timeout=HTTP_TIMEOUT)


def bearer_get(runner, token: str, path: str) -> requests.Response:
    return requests.get(
        f"{runner.base_url}/{path}",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"},
        timeout=HTTP_TIMEOUT,
    )


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def members(runner):
    found = runner.members()
    assert len(found) >= 4, f"need four demo members, have {found}"
    return found


@pytest.fixture(scope="session")
def public_app(runner):
    return runner.register_app("E2E Public App", REDIRECT_URI)


@pytest.fixture(scope="session")
def confidential_app(runner):
    return runner.register_app("E2E Confidential App", REDIRECT_URI, confidential=True)


@pytest.fixture(scope="module")
def full_launch(runner, public_app, members):
    client_id, _ = public_app
    return launch(runner, client_id, None, members[0])


@pytest.fixture(scope="module")
def partial_launch(runner, public_app, members):
    client_id, _ = public_app
    return launch(runner, client_id, None, members[1], tick=["ExplanationOfBenefit"])


@pytest.fixture(scope="module")
def rotated(runner, public_app, members):
    """A launch whose refresh token fhirclient has used once: (launch, old, new)."""
    client_id, _ = public_app
    done = launch(runner, client_id, None, members[2])
    old = done.client.server.auth.refresh_token
    done.client.reauthorize()
    return done, old, done.client.server.auth.refresh_token


@pytest.fixture(scope="module")
def confidential_launch(runner, confidential_app, members):
    client_id, secret = confidential_app
    return launch(runner, client_id, secret, members[3])


# ---------------------------------------------------------------- discovery


def test_discovery_metadata_oauth_uris_match_smart_configuration(runner, public_app):
    client, _ = smart_client(runner.base_url, public_app[0], None, SCOPE)
    client.prepare()  # fhirclient's own discovery: CapabilityStatement oauth-uris
    config = requests.get(f"{runner.base_url}/.well-known/smart-configuration", timeout=HTTP_TIMEOUT).json()
    assert client.server.auth._authorize_uri == config["authorization_endpoint"]
    assert client.server.auth._token_uri == config["token_endpoint"]
    assert config["code_challenge_methods_supported"] == ["S256"]
    for capability in ("launch-standalone", "client-public", "client-confidential-symmetric",
                       "context-standalone-patient", "permission-offline", "sso-openid-connect"):
        assert capability in config["capabilities"]


def test_authorize_url_carries_pkce_s256_state_and_aud(full_launch, runner):
    query = parse_qs(urlsplit(full_launch.authorize_url).query)
    assert query["response_type"] == ["code"]
    assert query["code_challenge_method"] == ["S256"]
    verifier = full_launch.client.server.auth.code_verifier
    expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    assert query["code_challenge"] == [expected]
    assert query["aud"] == [runner.base_url]
    assert query["state"][0]


# ---------------------------------------------------------------- the consent screen


def test_consent_screen_names_the_app_its_attestation_and_privacy_policy(full_launch):
    html = full_launch.consent_html
    assert "E2E Public App" in html
    assert "attested" in html
    assert 'href="https://e2e.example/privacy"' in html
    assert "keep access until you disconnect it" in html  # offline_access, in plain words


# ---------------------------------------------------------------- the token response


def test_token_response_is_bearer_with_expires_in_scope_and_patient(full_launch):
    token = full_launch.token
    assert full_launch.token_response.status_code == 200
    assert token["access_token"]
    assert token["token_type"] == "Bearer"
    assert isinstance(token["expires_in"], int) and 0 < token["expires_in"] <= 3600
    assert token["patient"] == full_launch.member["patient_id"]
    assert full_launch.client.patient_id == full_launch.member["patient_id"]  # fhirclient read it


def test_token_response_scope_is_everything_approved(full_launch):
    granted = set(full_launch.token["scope"].split())
    asked = set(SCOPE.split()) | {"launch/patient"}
    assert granted == asked


def test_token_response_is_never_cached(full_launch):
    headers = full_launch.token_response.headers
    assert headers["Cache-Control"] == "no-store"
    assert headers["Pragma"] == "no-cache"


def test_offline_access_gives_a_refresh_token(full_launch):
    assert full_launch.token["refresh_token"]
    assert full_launch.client.server.auth.refresh_token == full_launch.token["refresh_token"]


def test_openid_gives_an_id_token_naming_the_member_as_fhir_user(full_launch, runner):
    keys = jwt.PyJWKClient(f"{runner.base_url}/.well-known/jwks.json")
    id_token = full_launch.token["id_token"]
    claims = jwt.decode(
        id_token, keys.get_signing_key_from_jwt(id_token).key, algorithms=["RS256"],
        audience=full_launch.client_id, issuer=runner.base_url,
    )
    patient = full_launch.member["patient_id"]
    assert claims["fhirUser"] in (f"Patient/{patient}", f"{runner.base_url}/Patient/{patient}")
    assert claims["sub"]


def test_access_token_is_rs256_for_the_fhir_base_url_with_patient_and_grant(full_launch, runner):
    keys = jwt.PyJWKClient(f"{runner.base_url}/.well-known/jwks.json")
    token = full_launch.access_token
    claims = jwt.decode(
        token, keys.get_signing_key_from_jwt(token).key, algorithms=["RS256"],
        audience=runner.base_url, issuer=runner.base_url,
    )
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    assert claims["patient"] == full_launch.member["patient_id"]
    assert claims.get("grant_id")
    assert set(claims["scope"].split()) == set(full_launch.token["scope"].split())


# ---------------------------------------------------------------- FHIR reads with the token


def test_explanation_of_benefit_search_returns_the_members_claims(full_launch):
    patient = full_launch.member["patient_id"]
    search = ExplanationOfBenefit.where(struct={"patient": patient})
    eobs = list(search.perform_resources_iter(full_launch.client.server))  # follows `next`
    assert eobs, "the demo member has claims"
    assert {eob.patient.reference for eob in eobs} == {f"Patient/{patient}"}


def test_patient_read_returns_the_member(full_launch):
    patient = full_launch.client.patient  # fhirclient's Patient.read of the launch context
    assert patient is not None and patient.id == full_launch.member["patient_id"]
    assert patient.birthDate.isostring == full_launch.member["birth_date"]


# ---------------------------------------------------------------- partial consent


def test_partial_consent_token_scope_lists_only_the_approved_types(partial_launch):
    granted = partial_launch.token["scope"].split()
    resource_scopes = [s for s in granted if s.startswith("patient/")]
    assert resource_scopes and all(s.startswith("patient/ExplanationOfBenefit.") for s in resource_scopes)
    assert partial_launch.token["patient"] == partial_launch.member["patient_id"]


def test_partial_consent_patient_read_is_forbidden(partial_launch):
    patient = partial_launch.member["patient_id"]
    with pytest.raises(FHIRPermissionDeniedException):
        Patient.read(patient, partial_launch.client.server)
    assert bearer_get_status(partial_launch, f"Patient/{patient}") == 403


def test_partial_consent_explanation_of_benefit_search_is_allowed(partial_launch):
    patient = partial_launch.member["patient_id"]
    assert bearer_get_status(partial_launch, f"ExplanationOfBenefit?patient={patient}") == 200


def bearer_get_status(launch_: Launch, path: str) -> int:
    base = launch_.client.server.base_uri.rstrip("/")
    response = requests.get(
        f"{base}/{path}",
        headers={"Authorization": f"Bearer {launch_.access_token}", "Accept": "application/fhir+json"},
        timeout=HTTP_TIMEOUT,
    )
    return response.status_code


# ---------------------------------------------------------------- refresh rotation


def test_refresh_rotates_the_refresh_token(rotated, runner):
    done, old, new = rotated
    assert new and new != old
    response = done.token_responses[-1]
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"
    assert response.json()["patient"] == done.member["patient_id"]
    patient = done.member["patient_id"]
    assert bearer_get(runner, done.access_token, f"ExplanationOfBenefit?patient={patient}").status_code == 200


def test_refresh_token_already_used_is_rejected_as_invalid_grant(rotated, runner):
    done, old, _ = rotated
    response = refresh_directly(runner, done, old)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert response.headers["Cache-Control"] == "no-store"


def test_refresh_token_replay_ends_the_whole_grant(rotated, runner):
    done, old, new = rotated
    refresh_directly(runner, done, old)  # the replay (again, if the test above ran)
    response = refresh_directly(runner, done, new)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


# ---------------------------------------------------------------- confidential client, revocation


def test_confidential_client_authenticates_with_its_secret(confidential_launch):
    assert confidential_launch.token_response.request.headers["Authorization"].startswith("Basic ")
    assert confidential_launch.token["token_type"] == "Bearer"
    assert confidential_launch.token["patient"] == confidential_launch.member["patient_id"]


def test_confidential_client_with_a_wrong_secret_is_invalid_client(confidential_launch, runner):
    response = requests.post(
        f"{runner.base_url}/token",
        data={"grant_type": "refresh_token", "refresh_token": confidential_launch.client.server.auth.refresh_token},
        auth=(confidential_launch.client_id, "not-the-secret"),
        timeout=HTTP_TIMEOUT,
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_revocation_stops_refresh_at_once_and_access_within_the_grant_cache_window(confidential_launch, runner):
    done = confidential_launch
    patient = done.member["patient_id"]
    search = f"ExplanationOfBenefit?patient={patient}"
    # The access token works, and the handlers now hold "grant active" in their cache.
    assert bearer_get(runner, done.access_token, search).status_code == 200

    revoked = requests.post(
        f"{runner.base_url}/revoke",
        data={"token": done.client.server.auth.refresh_token, "token_type_hint": "refresh_token"},
        auth=(done.client_id, done.secret),
        timeout=HTTP_TIMEOUT,
    )
    revoked_at = time.monotonic()
    assert revoked.status_code == 200
    assert revoked.headers["Cache-Control"] == "no-store"

    # Refresh stops at once.
    with pytest.raises(requests.HTTPError) as refused:
        done.client.reauthorize()
    assert refused.value.response.status_code == 400
    assert refused.value.response.json()["error"] == "invalid_grant"

    # The unexpired access token stops within the grant-cache window (serve was started
    # with --grant-cache-seconds GRANT_CACHE_SECONDS; production uses at most 60 s).
    limit = GRANT_CACHE_SECONDS + 3
    status = None
    while time.monotonic() - revoked_at < limit:
        status = bearer_get(runner, done.access_token, search).status_code
        if status == 401:
            break
        assert status == 200, f"unexpected status {status} while the grant cache expires"
        time.sleep(0.2)
    assert status == 401, f"the revoked grant's access token still worked {limit} s after revocation"
    assert time.monotonic() - revoked_at <= limit
