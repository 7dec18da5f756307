"""Independent FHIR R4 (4.0.1) structural validation with the fhir.resources models.

Why a second implementation: our Rust code writes FHIR JSON by hand, so checking it with
the same code that wrote it proves nothing. fhir.resources is generated from the FHIR
4.0.1 StructureDefinitions: it rejects unknown elements, missing required elements,
wrong cardinality and malformed primitives (dates, ids, codes).

pydantic 1 coerces silently (`"gender": 42` becomes "42"), so after parsing we also
compare the JSON kinds of the input with the model's own JSON output: a number where
the model holds a string (or the reverse), or an element the model dropped, is an error.

Usage: validate_fhir.py PATH... | - (NDJSON on stdin) | --self-test
Prints one line per invalid resource, then "validated N resources, M invalid".
Exits 1 when any resource is invalid, 2 on usage errors.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Iterator

from fhir.resources import get_fhir_model_class
from pydantic import ValidationError


def kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def kind_mismatches(given: Any, parsed: Any, path: str = "") -> Iterator[str]:
    """Where the parsed model disagrees with the input's JSON kinds or lost elements."""
    if kind(given) != kind(parsed):
        yield f"{path or '/'}: expected {kind(parsed)}, got {kind(given)} ({json.dumps(given)[:40]})"
        return
    if isinstance(given, dict):
        for key, value in given.items():
            if key not in parsed:
                yield f"{path}/{key}: element dropped by the model (empty or null?)"
            else:
                yield from kind_mismatches(value, parsed[key], f"{path}/{key}")
    elif isinstance(given, list):
        if len(given) != len(parsed):
            yield f"{path}: {len(given)} items given, {len(parsed)} kept (empty or null items?)"
        for i, (a, b) in enumerate(zip(given, parsed)):
            yield from kind_mismatches(a, b, f"{path}/{i}")


def validate_resource(data: Any) -> list[str]:
    """Errors for one resource (empty when valid). Bundle entries are checked one by one
    as well, so a bad entry is reported with its own type, id and reason."""
    if not isinstance(data, dict) or not isinstance(data.get("resourceType"), str):
        return ["not a FHIR resource (no resourceType)"]
    try:
        model_class = get_fhir_model_class(data["resourceType"])
    except KeyError:
        return [f"unknown resourceType {data['resourceType']!r}"]
    try:
        model = model_class.parse_obj(data)
    except ValidationError as err:
        return [f"{'/'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()]
    errors = list(kind_mismatches(data, json.loads(model.json())))
    if data["resourceType"] == "Bundle":
        for i, entry in enumerate(data.get("entry") or []):
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if resource is None:
                continue
            label = f"entry/{i}/{resource.get('resourceType', '?')}/{resource.get('id', '?')}"
            errors += [f"{label}: {e}" for e in validate_resource(resource)]
    return errors


def json_files(path: Path) -> Iterator[Path]:
    if path.is_dir():
        yield from sorted(p for p in path.rglob("*.json") if p.is_file())
    else:
        yield path


def sources(args: list[str]) -> Iterator[tuple[str, Any]]:
    """(label, parsed JSON or an Exception) for every input resource."""
    for arg in args:
        if arg == "-":
            for n, line in enumerate(sys.stdin, 1):
                if line.strip():
                    try:
                        yield f"stdin:{n}", json.loads(line)
                    except json.JSONDecodeError as err:
                        yield f"stdin:{n}", err
            continue
        for file in json_files(Path(arg)):
            try:
                yield str(file), json.loads(file.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
                yield str(file), err


def run(args: list[str]) -> int:
    total = invalid = 0
    for label, data in sources(args):
        total += 1
        errors = [f"unreadable: {data}"] if isinstance(data, Exception) else validate_resource(data)
        if errors:
            invalid += 1
            shown = "; ".join(errors[:5]) + (f"; … {len(errors) - 5} more" if len(errors) > 5 else "")
            print(f"INVALID {label}: {shown}")
    print(f"validated {total} resources, {invalid} invalid")
    return 1 if invalid or total == 0 else 0


GOOD_PATIENT = {
    "resourceType": "Patient",
    "id": "good",
    "identifier": [{"system": "urn:example", "value": "1"}],
    "name": [{"family": "Doe", "given": ["Jane"]}],
    "gender": "female",
    "birthDate": "1980-02-29",
}


def self_test() -> int:
    bad_cases = {
        "gender as a number": {**GOOD_PATIENT, "gender": 42},
        "unknown element": {**GOOD_PATIENT, "favouriteColour": "blue"},
        "malformed date": {**GOOD_PATIENT, "birthDate": "1980-13-45"},
        "bad entry inside a Bundle": {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": GOOD_PATIENT}, {"resource": {**GOOD_PATIENT, "gender": 42}}],
        },
    }
    failures = []
    if validate_resource(GOOD_PATIENT):
        failures.append(f"known-good Patient rejected: {validate_resource(GOOD_PATIENT)}")
    good_bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": GOOD_PATIENT}]}
    if validate_resource(good_bundle):
        failures.append(f"known-good Bundle rejected: {validate_resource(good_bundle)}")
    for name, resource in bad_cases.items():
        if not validate_resource(resource):
            failures.append(f"{name} accepted")
    for failure in failures:
        print(f"SELF-TEST FAILED: {failure}")
    print(f"self-test: {2 + len(bad_cases) - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


def main(argv: list[str]) -> int:
    if argv == ["--self-test"]:
        return self_test()
    if not argv or any(a.startswith("--") for a in argv):
        print(__doc__.strip().split("\n\n")[-1], file=sys.stderr)
        return 2
    return run(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
