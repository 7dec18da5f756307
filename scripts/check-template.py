#!/usr/bin/env python3
"""Checks that template.yaml's DynamoDB table is exactly infra/dynamodb-table.json,
and that the ingest function's ephemeral storage can hold a file of MAX_FILE_BYTES.

infra/dynamodb-table.json is the one definition of the table's keys and indexes; the
tests create their tables from it. template.yaml carries the same properties (plus
deployment-only ones such as point-in-time recovery). Run with the SAM venv's python:
it uses cfn-lint's YAML loader, which understands !Ref, !Sub and !GetAtt.
"""
import json
import pathlib
import sys

from cfnlint.decode import cfn_yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent


def plain(value):
    """cfn-lint wraps values in its own node types; compare plain JSON."""
    return json.loads(json.dumps(value))


def main():
    template = cfn_yaml.load(str(ROOT / "template.yaml"))
    table = plain(template["Resources"]["FhirTable"]["Properties"])
    definition = json.loads((ROOT / "infra" / "dynamodb-table.json").read_text())
    problems = [
        f"FhirTable.{key}: template has {json.dumps(table.get(key))}, infra has {json.dumps(value)}"
        for key, value in definition.items()
        if table.get(key) != value
    ]
    if problems:
        sys.exit("template.yaml and infra/dynamodb-table.json disagree:\n  " + "\n  ".join(problems))
    print("template.yaml FhirTable matches infra/dynamodb-table.json")
    check_ingest_spool(template)


def check_ingest_spool(template):
    """edi-ingest spools each object to /tmp: EphemeralStorage must exceed the cap."""
    function = plain(template["Resources"]["EdiIngestFunction"]["Properties"])
    storage_mb = function.get("EphemeralStorage", {}).get("Size", 512)
    cap = int(function["Environment"]["Variables"]["MAX_FILE_BYTES"])
    if cap >= storage_mb * 1000 * 1000:
        sys.exit(
            f"EdiIngestFunction: MAX_FILE_BYTES {cap} does not fit its EphemeralStorage "
            f"of {storage_mb} MB (objects are spooled to /tmp)"
        )
    print(f"EdiIngestFunction spools up to {cap} bytes into {storage_mb} MB of /tmp")


if __name__ == "__main__":
    main()
