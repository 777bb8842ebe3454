"""harness/yamlsafe.py: user YAML is bounded before it is built, and an unreadable file is one line."""

from __future__ import annotations

import os

import pytest
import yaml

from harness import yamlsafe


def _read(path):
    return yamlsafe.read_user_file(path, noun="plan", missing_fix="; name an existing file", folder_fix="see plans/",
                                   too_big_fix="a plan lists cases")


@pytest.mark.parametrize("make, expected", [
    (lambda p: None, "plan file not found; name an existing file"),
    (lambda p: p.mkdir(), "is a folder; give a plan file (see plans/)"),
    (lambda p: p.write_bytes(b"cases: [\xff]\n"), "not UTF-8 text (byte 8); a plan is a YAML text file"),
    (lambda p: os.mkfifo(p), "cannot read the plan file (not a plain file)"),
    (lambda p: p.write_bytes(b"#" * (yamlsafe.MAX_BYTES + 1)), "which no plan or reference file is; a plan lists cases"),
])
def test_every_way_a_user_file_fails_is_one_line_naming_it(tmp_path, make, expected):
    path = tmp_path / "plan.yaml"
    make(path)
    with pytest.raises(yamlsafe.UnreadableFile) as info:
        _read(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: ") and expected in msg and "\n" not in msg


def test_a_readable_file_is_its_text(tmp_path):
    path = tmp_path / "plan.yaml"
    path.write_text("cases: []\n", encoding="utf-8")
    assert _read(path) == "cases: []\n"


def test_an_alias_bomb_is_refused_before_it_is_built():
    # 9 levels of 10 aliases each: 10^9 values described in a few hundred bytes
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    with pytest.raises(yamlsafe.YamlTooBig):
        yamlsafe.load("\n".join(lines) + "\n")


def test_within_bounds_it_loads_as_safe_yaml():
    text = "cases:\n  - {backend: math, seq: 128}\n"
    assert yamlsafe.load(text) == yaml.safe_load(text)


def test_a_syntax_error_names_its_line_and_column():
    with pytest.raises(yaml.YAMLError) as info:
        yamlsafe.load("seed: 1\ncases: a: b\n")  # a mapping value where none may start
    line, column, problem = yamlsafe.syntax_error(info.value)
    assert (line, column) == (2, 9) and problem == "mapping values are not allowed here"


def test_a_value_with_a_control_or_bidi_character_is_refused_with_its_line():
    import re

    for text, char in (('a: 1\nname: "NVIDIA H200\\u202e"\n', "U+202E"), ('a: 1\nid: "x\\e[2J"\n', "U+001B")):
        with pytest.raises(yamlsafe.YamlUnsafeText, match=re.escape(f"line 2: a value holds the control character {char}")):
            yamlsafe.load(text)
    assert yamlsafe.load('name: "tab\\tis fine"') == {"name": "tab\tis fine"}
