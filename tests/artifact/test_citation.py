"""CITATION.cff is valid against the Citation File Format 1.2.0 JSON schema.

The schema is vendored (tests/artifact/cff-schema-1.2.0.json, CC-BY-4.0, as shipped in the
`cffconvert` 2.0.0 wheel at cffconvert/schemas/1.2.0/schema.json) because CI reaches no network
beyond PyPI."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from testkit import REPO

SCHEMA = Path(__file__).resolve().parent / "cff-schema-1.2.0.json"


def load_cff(text: str) -> dict:
    # The schema's own note: YAML dates must be validated as strings.
    return json.loads(json.dumps(yaml.safe_load(text), default=str))


def validator() -> jsonschema.Draft7Validator:
    schema = json.loads(SCHEMA.read_text())
    assert schema["$id"].startswith("https://citation-file-format.github.io/1.2.0/")
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)


def test_citation_cff_is_valid_cff_1_2_0():
    data = load_cff((REPO / "CITATION.cff").read_text())
    errors = sorted(validator().iter_errors(data), key=str)
    assert not errors, "; ".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)
    assert data["cff-version"] == "1.2.0"


def test_citation_version_matches_the_package():
    import re

    pyproject = (REPO / "pyproject.toml").read_text()
    data = load_cff((REPO / "CITATION.cff").read_text())
    assert f'\nversion = "{data["version"]}"\n' in pyproject
    assert re.search(r'^license = \{ text = "' + re.escape(data["license"]) + r'" \}$', pyproject, re.M)


def test_the_license_file_is_the_one_the_metadata_names():
    # CITATION.cff and pyproject.toml say Apache-2.0; the repository carries its full text.
    data = load_cff((REPO / "CITATION.cff").read_text())
    text = (REPO / "LICENSE").read_text()
    assert data["license"] == "Apache-2.0"
    assert "Apache License" in text and "Version 2.0, January 2004" in text and "END OF TERMS AND CONDITIONS" in text


@pytest.mark.parametrize("breakage", [
    lambda d: d.pop("authors"),
    lambda d: d.update({"cff-version": "1.2"}),
    lambda d: d.update({"license": "Apache 2"}),
    lambda d: d.update({"colour": "blue"}),
])
def test_the_schema_check_catches_broken_files(breakage):
    data = load_cff((REPO / "CITATION.cff").read_text())
    breakage(data)
    assert list(validator().iter_errors(data))
