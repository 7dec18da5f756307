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


if __name__ == "__main__":
    main()
