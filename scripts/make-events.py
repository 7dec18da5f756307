#!/usr/bin/env python3
"""Writes events/: one realistic API Gateway HTTP API (payload 2.0) event per route.

The events are used three ways: by Rust tests (include_str!), by `cargo lambda invoke
--data-file`, and by `sam local invoke -e`. Run this script after changing routes;
the test command checks that events/ is up to date.
"""
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"

# Resources the local server's demo holds (demo-data, default seed, loaded by `serve`
# as X12 through the ingest pipeline, so the ids are the X12 path's). A test
# (infra/local/tests/it/carin_search.rs) reads these events back against the served demo.
PATIENT = "patient-999996666-DH000154930"
OTHER_PATIENT = "patient-999996666-DH000242039"  # a dependent, with a RelatedPerson
IDS = {
    "Patient": PATIENT,
    "Coverage": "coverage-999996666-DH000154930-medical",
    "ExplanationOfBenefit": "eob-e6d72b46e2036f6ecf8972a80e03fdde",
    "Organization": "org-payer-999996666",
    "Practitioner": "practitioner-npi-1987000035",
    "RelatedPerson": "relatedperson-m002",
}
SEARCHES = {
    "Patient": "_id=" + PATIENT,
    "Coverage": "patient=" + PATIENT + "&_include=Coverage:payor",
    "ExplanationOfBenefit": "patient=" + PATIENT + "&type=professional&_include=ExplanationOfBenefit:coverage",
    "Organization": "name=health",
    "Practitioner": "name=smi",
    "RelatedPerson": "patient=" + OTHER_PATIENT,
}
KEBAB = {
    "Patient": "patient",
    "Coverage": "coverage",
    "ExplanationOfBenefit": "explanation-of-benefit",
    "Organization": "organization",
    "Practitioner": "practitioner",
    "RelatedPerson": "related-person",
}
# An HRex $member-match request: the member's demographics, the old card and the
# member's consent (shapes as in infra/local/tests/it/member_match.rs).
MEMBER_MATCH = {"resourceType": "Parameters", "parameter": [
    {"name": "MemberPatient", "resource": {
        "resourceType": "Patient", "id": "1", "name": [{"family": "Example", "given": ["Ana"]}],
        "birthDate": "1985-04-12", "gender": "female"}},
    {"name": "CoverageToMatch", "resource": {
        "resourceType": "Coverage", "id": "9", "status": "active", "subscriberId": "SUB-7001",
        "beneficiary": {"reference": "Patient/1"},
        "payor": [{"identifier": {"system": "http://example.org/payer-id", "value": "PLAN01"}}]}},
    {"name": "Consent", "resource": {
        "resourceType": "Consent", "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                              "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "64292-6"}]}],
        "patient": {"reference": "Patient/1"}, "performer": [{"reference": "Patient/1"}],
        "policy": [{"uri": "http://hl7.org/fhir/us/davinci-hrex/StructureDefinition-hrex-consent.html#regular"}],
        "provision": {"type": "permit", "period": {"start": "2026-01-01", "end": "2027-12-31"}}}},
]}
TOKEN = "Bearer eyJhbGciOiJSUzI1NiIsImtpZCI6ImxvY2FsIiwidHlwIjoiSldUIn0.REPLACE_WITH_patient-access_token.SIGNATURE"


def event(method, route_key, path, query="", body=None, content_type=None, authorized=True):
    headers = {
        "accept": "application/fhir+json",
        "accept-encoding": "gzip",
        "host": "abc123xyz.execute-api.us-east-1.amazonaws.com",
        "user-agent": "carin-client/1.0",
        "x-amzn-trace-id": "Root=1-6742f0a1-1b2c3d4e5f60718293a4b5c6",
        "x-forwarded-for": "198.51.100.7",
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
    }
    if authorized:
        headers["authorization"] = TOKEN
    if content_type:
        headers["content-type"] = content_type
    proxy = path.split("/", 2)[2] if path.count("/") >= 2 else None
    ev = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123xyz",
            "domainName": "abc123xyz.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123xyz",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "198.51.100.7",
                "userAgent": "carin-client/1.0",
            },
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "routeKey": route_key,
            "stage": "$default",
            "time": "24/Nov/2026:10:00:00 +0000",
            "timeEpoch": 1795514400000,
        },
        "isBase64Encoded": False,
    }
    if query:
        params = {}
        for pair in query.split("&"):
            k, _, v = pair.partition("=")
            params[k] = params[k] + "," + v if k in params else v
        ev["queryStringParameters"] = params
    if proxy:
        ev["pathParameters"] = {"proxy": proxy}
    if body is not None:
        ev["body"] = body
    return ev


def main():
    EVENTS.mkdir(exist_ok=True)
    wanted = {}
    for rtype, name in KEBAB.items():
        rid = IDS[rtype]
        wanted[f"{name}-read.json"] = event("GET", f"ANY /{rtype}/{{proxy+}}", f"/{rtype}/{rid}")
        wanted[f"{name}-vread.json"] = event("GET", f"ANY /{rtype}/{{proxy+}}", f"/{rtype}/{rid}/_history/1")
        wanted[f"{name}-search.json"] = event("GET", f"ANY /{rtype}", f"/{rtype}", SEARCHES[rtype])
        wanted[f"{name}-search-post.json"] = event(
            "POST", f"ANY /{rtype}/{{proxy+}}", f"/{rtype}/_search",
            body=SEARCHES[rtype], content_type="application/x-www-form-urlencoded")
    wanted["metadata.json"] = event("GET", "GET /metadata", "/metadata", authorized=False)
    for page in ("members", "developers", "apps"):
        wanted[f"public-pages-{page}.json"] = event("GET", f"GET /{page}", f"/{page}", authorized=False)
    # The public provider directory (no token) and Find a provider.
    wanted["directory-metadata.json"] = event(
        "GET", "ANY /directory/{proxy+}", "/directory/metadata", authorized=False)
    wanted["directory-search.json"] = event(
        "GET", "ANY /directory/{proxy+}", "/directory/PractitionerRole",
        "specialty=207Q00000X&_include=PractitionerRole:location", authorized=False)
    wanted["public-pages-find.json"] = event(
        "GET", "GET /directory/find", "/directory/find", "specialty=207Q00000X&where=43210",
        authorized=False)
    # Provider Access, every member (Payer-to-Payer): the literal route of BulkApiFunction,
    # with a backend (system) token.
    kickoff = event("GET", "GET /Patient/$export", "/Patient/$export", "_type=Patient,Coverage")
    kickoff["headers"]["prefer"] = "respond-async"
    kickoff.pop("pathParameters")  # a literal route has no path variable
    wanted["patient-export-kickoff.json"] = kickoff
    # Payer-to-Payer (BulkApiFunction): HRex $member-match, a literal route, with a
    # backend token and an HRex Parameters body; and one matched member's $everything,
    # whose route has the member's id as its one path variable.
    match = event("POST", "POST /Patient/$member-match", "/Patient/$member-match",
                  body=json.dumps(MEMBER_MATCH), content_type="application/fhir+json")
    match.pop("pathParameters")
    wanted["patient-member-match.json"] = match
    everything = event("GET", "GET /Patient/{id}/$everything", f"/Patient/{PATIENT}/$everything")
    everything["pathParameters"] = {"id": PATIENT}
    wanted["patient-everything.json"] = everything
    check = "--check" in sys.argv
    stale = []
    for name, ev in wanted.items():
        text = json.dumps(ev, indent=2, sort_keys=True) + "\n"
        path = EVENTS / name
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        sys.exit("events/ is out of date (run scripts/make-events.py): " + ", ".join(stale))


if __name__ == "__main__":
    main()
