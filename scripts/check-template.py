#!/usr/bin/env python3
"""Checks that template.yaml's DynamoDB tables (the FHIR table and the provider
directory's) are exactly infra/dynamodb-table.json, that the EDI bucket's functions'
ephemeral storage can hold a file of MAX_FILE_BYTES, that every function in the
template is a binary the workspace builds, for arm64, and that alarms and the audit
archive cover every queue and function (issue 14).

infra/dynamodb-table.json is the one definition of the table's keys and indexes; the
tests create their tables from it. template.yaml carries the same properties (plus
deployment-only ones such as point-in-time recovery). Run with the SAM venv's python:
it uses cfn-lint's YAML loader, which understands !Ref, !Sub and !GetAtt.
"""
import json
import re
import pathlib
import subprocess
import sys

from cfnlint.decode import cfn_yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
# Both tables have the one key design of infra/dynamodb-table.json.
TABLES = ("FhirTable", "DirectoryTable")
# The functions the EDI bucket triggers; each spools its object to /tmp.
SPOOLING_FUNCTIONS = ("EdiIngestFunction", "DirectoryLoadFunction")


def plain(value):
    """cfn-lint wraps values in its own node types; compare plain JSON."""
    return json.loads(json.dumps(value))


def main():
    template = cfn_yaml.load(str(ROOT / "template.yaml"))
    definition = json.loads((ROOT / "infra" / "dynamodb-table.json").read_text())
    problems = []
    for name in TABLES:
        table = plain(template["Resources"][name]["Properties"])
        problems += [
            f"{name}.{key}: template has {json.dumps(table.get(key))}, infra has {json.dumps(value)}"
            for key, value in definition.items()
            if table.get(key) != value
        ]
    if problems:
        sys.exit("template.yaml and infra/dynamodb-table.json disagree:\n  " + "\n  ".join(problems))
    print(f"template.yaml {' and '.join(TABLES)} match infra/dynamodb-table.json")
    for function in SPOOLING_FUNCTIONS:
        check_ingest_spool(template, function)
    check_functions(template)
    check_operations(template)
    check_edge(template)


def check_ingest_spool(template, name):
    """The EDI bucket's functions spool each object to /tmp: EphemeralStorage must
    exceed the cap."""
    function = plain(template["Resources"][name]["Properties"])
    storage_mb = function.get("EphemeralStorage", {}).get("Size", 512)
    cap = int(function["Environment"]["Variables"]["MAX_FILE_BYTES"])
    if cap >= storage_mb * 1000 * 1000:
        sys.exit(
            f"{name}: MAX_FILE_BYTES {cap} does not fit its EphemeralStorage "
            f"of {storage_mb} MB (objects are spooled to /tmp)"
        )
    print(f"{name} spools up to {cap} bytes into {storage_mb} MB of /tmp")


def function_binaries():
    """The binaries of the function crates, from `cargo metadata`; also checks the
    crates' naming rule: folder functions/<name>-fn holds package <name>-fn."""
    metadata = json.loads(subprocess.run(
        ["cargo", "metadata", "--no-deps", "--format-version", "1"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout)
    binaries = {}
    for package in metadata["packages"]:
        folder = pathlib.Path(package["manifest_path"]).parent
        if folder.parent != ROOT / "functions":
            continue
        if package["name"] != folder.name or not folder.name.endswith("-fn"):
            sys.exit(f"functions/{folder.name} holds package {package['name']}: "
                     "a function crate is functions/<name>-fn with package <name>-fn")
        for target in package["targets"]:
            if "bin" in target["kind"]:
                binaries[target["name"]] = package["name"]
    return binaries


def check_functions(template):
    """Every function builds a workspace binary with cargo-lambda, for arm64 on the
    provided.al2023 runtime, and every function binary is deployed."""
    binaries = function_binaries()
    globals_ = plain(template.get("Globals", {}).get("Function", {}))
    problems, deployed = [], {}
    for name, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        metadata = plain(resource.get("Metadata", {}))
        properties = plain(resource.get("Properties", {}))
        setting = lambda key: properties.get(key, globals_.get(key))  # noqa: E731
        binary = metadata.get("BuildProperties", {}).get("Binary")
        if metadata.get("BuildMethod") != "rust-cargolambda":
            problems.append(f"{name}: BuildMethod is not rust-cargolambda")
        if binary not in binaries:
            problems.append(f"{name}: Binary {binary!r} is no binary of a functions/ crate")
        elif binary in deployed:
            problems.append(f"{name}: Binary {binary} is already {deployed[binary]}")
        deployed[binary] = name
        if setting("Architectures") != ["arm64"]:
            problems.append(f"{name}: Architectures {setting('Architectures')}, not [arm64]")
        if setting("Runtime") != "provided.al2023" or setting("Handler") != "bootstrap":
            problems.append(f"{name}: not Runtime provided.al2023 with Handler bootstrap")
    problems += [f"binary {binary} ({package}) is built but no function deploys it"
                 for binary, package in sorted(binaries.items()) if binary not in deployed]
    if problems:
        sys.exit("template.yaml's functions and the workspace disagree:\n  " + "\n  ".join(problems))
    print(f"{len(deployed)} functions: each a workspace binary, built with cargo-lambda for arm64")


# Functions whose lines say nothing about members' data: they write no `audit` lines,
# or (the public directory) only ones about public data, not worth six years.
NOT_AUDITED = {"MetadataFunction", "UsageAggregatorFunction", "UsageReportFunction",
               "AuditArchiveFunction", "DirectoryApiFunction", "DirectoryLoadFunction"}


def refs(value):
    """Every resource a value names with !Ref, !GetAtt or ${…} in !Sub."""
    found = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                found.add(inner)
            elif key == "Fn::GetAtt":
                found.add(inner[0] if isinstance(inner, list) else str(inner).split(".")[0])
            else:
                found |= refs(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= refs(inner)
    return found


def check_operations(template):
    """Issue 14: every dead-letter queue has an alarm, every function is in an errors
    and a throttles alarm, and every function that writes audit lines feeds the
    six-year archive."""
    resources = {name: plain(r) for name, r in template["Resources"].items()}
    of_type = lambda kind: {n: r for n, r in resources.items() if r.get("Type") == kind}  # noqa: E731
    alarms = of_type("AWS::CloudWatch::Alarm")
    functions = of_type("AWS::Serverless::Function")
    problems = []
    for queue in of_type("AWS::SQS::Queue"):
        if queue.endswith("DeadLetterQueue") and not any(
            queue in refs(a["Properties"]) and a["Properties"].get("MetricName")
            == "ApproximateNumberOfMessagesVisible" for a in alarms.values()):
            problems.append(f"{queue}: no alarm on its depth")
    # CloudWatch's hard limit: a metric math alarm reads at most 10 metrics.
    for name, alarm in alarms.items():
        stats = [m for m in alarm["Properties"].get("Metrics", []) if "MetricStat" in m]
        if len(stats) > 10:
            problems.append(f"{name}: {len(stats)} metrics, CloudWatch allows 10 per alarm")
    for metric in ("Errors", "Throttles"):
        covered = set()
        for alarm in alarms.values():
            for m in alarm["Properties"].get("Metrics", []):
                stat = m.get("MetricStat", {}).get("Metric", {})
                if stat.get("Namespace") == "AWS/Lambda" and stat.get("MetricName") == metric:
                    covered |= refs(stat)
        problems += [f"{f}: in no {metric} alarm" for f in functions if f not in covered]
    archived = {
        next(iter(refs(r["Properties"]["LogGroupName"])), "")
        for r in of_type("AWS::Logs::SubscriptionFilter").values()
        if "AuditArchiveFunction" in refs(r["Properties"].get("DestinationArn"))
    }
    for name, function in functions.items():
        group = next(iter(refs(function["Properties"].get("LoggingConfig", {}))), None)
        if name not in NOT_AUDITED and group not in archived:
            problems.append(f"{name}: its log group {group} does not feed the audit archive")
    if problems:
        sys.exit("template.yaml's operations are incomplete:\n  " + "\n  ".join(problems))
    print(f"{len(alarms)} alarms: every dead-letter queue and function covered; "
          f"{len(archived)} log groups feed the audit archive")


# ---- The edge (issue 14, finding 2) ----

# Requests this API must serve that trip a rule of AWS's core rule set, with the rule.
# AWS documents what each rule inspects, not its exact patterns, so each request here
# trips the rule by its documented description (the WAF guide's "Core rule set"
# table): those rules must count, not block, or the WAF breaks valid FHIR and SMART.
WAF_VALID_REQUESTS = [
    # "URI query strings over 2,048 bytes": a search with its _include and _revinclude.
    ("SizeRestrictions_QUERYSTRING", "a long ExplanationOfBenefit search",
     {"path": "/ExplanationOfBenefit", "query": "patient=Patient/p1&" + "&".join(
         f"_include=ExplanationOfBenefit:{p}" for p in
         ["patient", "provider", "care-team", "coverage", "insurer", "payee"] * 12)}),
    # "Request bodies over 8 KB": $bulk-member-match with many members.
    ("SizeRestrictions_BODY", "a $bulk-member-match of 50 members",
     {"path": "/Group/$bulk-member-match", "body": '{"resourceType":"Parameters"}' + " " * 9000}),
    # "Query argument values that embed a URL with an IPv4 address": a native app's
    # loopback redirect (RFC 8252 asks for 127.0.0.1) at /authorize.
    ("GenericRFI_QUERYARGUMENTS", "a native app's loopback redirect_uri at /authorize",
     {"path": "/authorize", "query": "response_type=code&client_id=app&redirect_uri="
      "http://127.0.0.1:53682/callback&scope=launch/patient&aud=https://fhir.plan.example"}),
    # The same redirect in the code exchange's form body.
    ("GenericRFI_BODY", "the same app's code exchange at /token",
     {"path": "/token", "body": "grant_type=authorization_code&code=abc&"
      "redirect_uri=http://127.0.0.1:53682/callback&code_verifier=xyz"}),
    # "Cross-site scripting patterns in the body": a resource's narrative is XHTML.
    ("CrossSiteScripting_BODY", "a $member-match Patient with its narrative",
     {"path": "/Patient/$member-match", "body": '{"text":{"div":"<div xmlns=\\"http://www.w3.org/1999/xhtml\\"><a href=\\"#\\">Jane</a></div>"}}'}),
    # "Requests without a User-Agent": payers' and providers' backend clients.
    ("NoUserAgent_HEADER", "a backend client's $export without User-Agent",
     {"path": "/Group/g1/$export", "headers": {}}),
]

_RFI = r"(https?|ftps?|file)://\d{1,3}(\.\d{1,3}){3}"
# Each rule's documented trigger, so that the table above is checked to trip it.
WAF_DOCUMENTED_TRIGGERS = {
    "SizeRestrictions_QUERYSTRING": lambda r: len(r.get("query", "")) > 2048,
    "SizeRestrictions_BODY": lambda r: len(r.get("body", "")) > 8192,
    "GenericRFI_QUERYARGUMENTS": lambda r: re.search(_RFI, r.get("query", "")) is not None,
    "GenericRFI_BODY": lambda r: re.search(_RFI, r.get("body", "")) is not None,
    "CrossSiteScripting_BODY": lambda r: re.search(r"<[a-z]+[^>]*>", r.get("body", "")) is not None,
    "NoUserAgent_HEADER": lambda r: "user-agent" not in r.get("headers", {"user-agent": "x"}),
}

# Which rate rule each route counts against (None: only the all-routes one).
WAF_ROUTE_RULES = [
    ("/authorize", "sign-in-per-ip"),
    ("/authorize/demographics", "sign-in-per-ip"),
    ("/connected-apps/revoke", "sign-in-per-ip"),
    ("/token", "credentials-per-ip"),
    ("/introspect", "credentials-per-ip"),
    ("/Patient/$member-match", "credentials-per-ip"),
    ("/Patient/%24member-match", "credentials-per-ip"),
    ("/Group/$bulk-member-match", "credentials-per-ip"),
    ("/Patient", None),
    ("/ExplanationOfBenefit/e1", None),
    ("/tokens", None),
    ("/directory/Practitioner", None),
]


def byte_match(statement, path):
    """AWS WAF's ByteMatchStatement on the URI path, with its text transformations."""
    from urllib.parse import unquote
    value = path
    for step in sorted(statement["TextTransformations"], key=lambda t: t["Priority"]):
        value = {"LOWERCASE": str.lower, "URL_DECODE": unquote}[step["Type"]](value)
    target, where = statement["SearchString"], statement["PositionalConstraint"]
    return {"EXACTLY": value == target, "STARTS_WITH": value.startswith(target),
            "ENDS_WITH": value.endswith(target), "CONTAINS": target in value}[where]


def scope_matches(scope, path):
    if "OrStatement" in scope:
        return any(scope_matches(s, path) for s in scope["OrStatement"]["Statements"])
    return byte_match(scope["ByteMatchStatement"], path)


def check_edge(template):
    """Issue 14, finding 2: every HTTP function may read the origin-verify secret (or
    it could not start behind the edge); valid FHIR and SMART requests pass the web
    ACL's managed rules; each route counts against the rate rule meant for it."""
    resources = {name: plain(r) for name, r in template["Resources"].items()}
    problems = []
    for name, resource in resources.items():
        properties = resource.get("Properties", {})
        events = properties.get("Events", {}).values()
        if resource.get("Type") != "AWS::Serverless::Function" or not any(
                e.get("Type") == "HttpApi" for e in events):
            continue
        statements = [s for p in properties.get("Policies", []) if isinstance(p, dict)
                      for s in p.get("Statement", [])]
        if not any(s.get("Action") == "secretsmanager:GetSecretValue"
                   and "OriginVerifySecret" in refs(s.get("Resource")) for s in statements):
            problems.append(f"{name}: serves HTTP but may not read OriginVerifySecret")
    rules = {r["Name"]: r for r in resources["EdgeWebAcl"]["Properties"]["Rules"]}
    core = rules["aws-core-rule-set"]["Statement"]["ManagedRuleGroupStatement"]
    counted = {o["Name"] for o in core.get("RuleActionOverrides", [])
               if "Count" in o["ActionToUse"]}
    for rule, what, request in WAF_VALID_REQUESTS:
        if not WAF_DOCUMENTED_TRIGGERS[rule](request):
            problems.append(f"{what} does not trip {rule} as documented: a wrong example")
        if rule not in counted:
            problems.append(f"core rule set {rule} blocks valid traffic: {what}")
    rate_rules = {name: r["Statement"]["RateBasedStatement"] for name, r in rules.items()
                  if "RateBasedStatement" in r["Statement"]}
    for path, expected in WAF_ROUTE_RULES:
        scoped = [name for name, rate in rate_rules.items()
                  if "ScopeDownStatement" in rate and scope_matches(rate["ScopeDownStatement"], path)]
        if scoped != ([expected] if expected else []):
            problems.append(f"{path}: counts against {scoped or 'no scoped rule'}, expected {expected}")
    if problems:
        sys.exit("template.yaml's edge is wrong:\n  " + "\n  ".join(problems))
    print(f"edge: {len(WAF_VALID_REQUESTS)} kinds of valid FHIR/SMART request pass the "
          f"managed rules; {len(WAF_ROUTE_RULES)} routes count against the right rate rule")


if __name__ == "__main__":
    main()
