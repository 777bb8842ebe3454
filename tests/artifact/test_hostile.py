"""Hostile inputs to `artifact check`, `artifact report`, `artifact derive-reference` and `harness
bench --plan`: folders, reference files and plans built to crash, hang, exhaust memory or read
outside the folder (issue 10). For each input: the exit code (1 is a failed claim and nothing
else; everything unusable is 2), one `error:` line on stderr and no traceback, bounded time and
memory, and no file read or written outside the folder it was given.

All inputs run through the real command lines in one subprocess (hostile_driver.py), under an
audit hook that sees every file opened, listed, created or renamed, and a 6 GiB address-space cap.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from testkit import H200_REF, REPO, copy_run

from harness import stats, storage
from harness.records import CaseResult, load_record, to_dict

BASE_RUN = REPO / "bench" / "h200" / "machine-C" / "run-C2"
CASE = "cases/sdpa-cudnn-b32h8s1024d64-float16-full-warm-cuda.json"
MAX_SECONDS = 60  # a hang guard, not a benchmark: every input finishes in about a second
MAX_RSS_MB = 1024

# name -> (builder(root) -> (cli, argv, extra readable paths, writable paths), exit code, stderr text)
INPUTS: dict[str, tuple[Callable, int, str]] = {}


def hostile(name: str, code: int, text: str):
    def register(fn: Callable) -> Callable:
        INPUTS[name] = (fn, code, text)
        return fn
    return register


# --------------------------------------------------------------------------- helpers

def check_argv(folder: Path, root: Path, name: str, reference: Path = H200_REF) -> tuple:
    out = root / name / "out"
    return ("artifact", ["check", str(folder), "--reference", str(reference), "--out", str(out)], [folder, reference], [out])


def edit_json(folder: Path, rel: str, fn: Callable[[dict], None]) -> None:
    p = folder / rel
    data = json.loads(p.read_text())
    fn(data)
    p.write_text(json.dumps(data, indent=1))  # allow_nan: NaN and Infinity are written as such
    storage.write_manifest(folder)


def edit_text(folder: Path, rel: str, fn: Callable[[str], str], manifest: bool = True) -> None:
    p = folder / rel
    p.write_text(fn(p.read_text()))
    if manifest:
        storage.write_manifest(folder)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def add_manifest_entry(folder: Path, rel: str, digest: str) -> None:
    m = json.loads((folder / "manifest.json").read_text())
    m["files"][rel] = digest
    (folder / "manifest.json").write_text(json.dumps(m))


def samples_case(folder: Path, n: int) -> None:
    """The case with n samples drawn from its own, its summary recomputed as the harness would."""
    p = folder / CASE
    case = load_record(p, CaseResult)
    rep = case.timing.repetitions[0]
    draw = np.random.default_rng(7).choice(np.asarray(rep.samples_ms), size=n).tolist()
    case.timing.repetitions = [type(rep)(**{**vars(rep), "samples_ms": draw})]
    case.timing.summary = stats.summarize_repetitions([draw], [True], seed=1234)
    sec = case.timing.summary.median_ms / 1e3
    case.throughput.tflops = case.throughput.flops / sec / 1e12
    case.throughput.gbps = case.throughput.bytes / sec / 1e9
    p.write_text(json.dumps(to_dict(case)))  # compact, as small as such a record gets
    storage.write_manifest(folder)


# --------------------------------------------------------------------------- results folders
@hostile("nan-in-summary", 2, "NaN is not valid JSON")
def _(root):
    f = copy_run(BASE_RUN, root / "nan-in-summary" / "results")
    edit_json(f, CASE, lambda d: d["timing"]["summary"].__setitem__("median_ms", float("nan")))
    return check_argv(f, root, "nan-in-summary")


@hostile("infinity-in-summary", 2, "Infinity is not valid JSON")
def _(root):
    f = copy_run(BASE_RUN, root / "infinity-in-summary" / "results")
    edit_json(f, CASE, lambda d: d["timing"]["summary"].__setitem__("ci_high_ms", float("inf")))
    return check_argv(f, root, "infinity-in-summary")


@hostile("number-beyond-float", 2, "1e999 is not a finite number")
def _(root):
    f = copy_run(BASE_RUN, root / "number-beyond-float" / "results")
    edit_text(f, CASE, lambda t: t.replace('"mean_ms": ', '"mean_ms": 1e999, "x": ', 1))
    return check_argv(f, root, "number-beyond-float")


@hostile("missing-timing", 2, "status ok but no timing")
def _(root):
    f = copy_run(BASE_RUN, root / "missing-timing" / "results")
    edit_json(f, CASE, lambda d: d.pop("timing"))
    return check_argv(f, root, "missing-timing")


@hostile("missing-summary-field", 2, "timing.summary.median_ms: missing field")
def _(root):
    f = copy_run(BASE_RUN, root / "missing-summary-field" / "results")
    edit_json(f, CASE, lambda d: d["timing"]["summary"].pop("median_ms"))
    return check_argv(f, root, "missing-summary-field")


@hostile("summary-not-from-samples", 2, "timing.summary.median_ms")
def _(root):
    # Finding 2: the raw samples 1.2x, the summary left alone, the manifest regenerated.
    f = copy_run(BASE_RUN, root / "summary-not-from-samples" / "results")
    edit_json(f, CASE, lambda d: [r.__setitem__("samples_ms", [x * 1.2 for x in r["samples_ms"]])
                                  for r in d["timing"]["repetitions"]])
    return check_argv(f, root, "summary-not-from-samples")


@hostile("throughput-not-from-times", 2, "throughput.tflops")
def _(root):
    f = copy_run(BASE_RUN, root / "throughput-not-from-times" / "results")
    edit_json(f, CASE, lambda d: d["throughput"].__setitem__("tflops", d["throughput"]["tflops"] * 1.3))
    return check_argv(f, root, "throughput-not-from-times")


@hostile("negative-rel-error", 2, "correctness.rel_error")
def _(root):
    f = copy_run(BASE_RUN, root / "negative-rel-error" / "results")
    edit_json(f, CASE, lambda d: d["correctness"].__setitem__("rel_error", -0.5))
    return check_argv(f, root, "negative-rel-error")


@hostile("non-utf8-case", 2, "not UTF-8")
def _(root):
    f = copy_run(BASE_RUN, root / "non-utf8-case" / "results")
    p = f / CASE
    p.write_bytes(p.read_bytes().replace(b'"harness_version": "', b'"harness_version": "\xff\xfe', 1))
    storage.write_manifest(f)
    return check_argv(f, root, "non-utf8-case")


@hostile("non-utf8-env", 2, "env.json: not UTF-8")
def _(root):
    f = copy_run(BASE_RUN, root / "non-utf8-env" / "results")
    p = f / "env.json"
    p.write_bytes(p.read_bytes().replace(b'"harness_version": "', b'"harness_version": "\xc3\x28', 1))
    storage.write_manifest(f)
    return check_argv(f, root, "non-utf8-env")


@hostile("non-utf8-manifest", 2, "manifest.json: not UTF-8")
def _(root):
    f = copy_run(BASE_RUN, root / "non-utf8-manifest" / "results")
    p = f / "manifest.json"
    p.write_bytes(p.read_bytes().replace(b'"harness_version": "', b'"harness_version": "\x80', 1))
    return check_argv(f, root, "non-utf8-manifest")


@hostile("json-nested-200000-deep", 2, "nested too deeply")
def _(root):
    f = copy_run(BASE_RUN, root / "json-nested-200000-deep" / "results")
    (f / CASE).write_text("[" * 200_000 + "]" * 200_000)
    storage.write_manifest(f)
    return check_argv(f, root, "json-nested-200000-deep")


@hostile("case-of-50-mb", 2, "larger than 16 MiB")
def _(root):
    f = copy_run(BASE_RUN, root / "case-of-50-mb" / "results")
    p = f / CASE
    text = p.read_text()
    start = text.index('"samples_ms": [') + len('"samples_ms": [')
    end = text.index("]", start)
    p.write_text(text[:start] + ",".join(["0.1729134567891"] * 3_300_000) + text[end:])
    storage.write_manifest(f)
    return check_argv(f, root, "case-of-50-mb")


@hostile("case-of-600k-samples", 2, "more than any plan takes")
def _(root):
    f = copy_run(BASE_RUN, root / "case-of-600k-samples" / "results")
    samples_case(f, 600_000)
    return check_argv(f, root, "case-of-600k-samples")


@hostile("case-of-400k-samples-is-judged", -1, "")
def _(root):
    # Within the bounds: judged in full, in bounded memory (the claims' bootstrap once asked for
    # 4000 x n indices: 12.8 GB here, 77 GiB for 2.6M samples). Exit 0 or 1, a verdict either way.
    f = copy_run(BASE_RUN, root / "case-of-400k-samples-is-judged" / "results")
    samples_case(f, 400_000)
    return check_argv(f, root, "case-of-400k-samples-is-judged")


@hostile("manifest-lists-dotdot-path", 2, "leaves the results folder")
def _(root):
    f = copy_run(BASE_RUN, root / "manifest-lists-dotdot-path" / "results")
    add_manifest_entry(f, "../" * 30 + "etc/passwd", sha256(Path("/etc/passwd")))
    return check_argv(f, root, "manifest-lists-dotdot-path")


@hostile("manifest-lists-absolute-path", 2, "absolute")
def _(root):
    f = copy_run(BASE_RUN, root / "manifest-lists-absolute-path" / "results")
    add_manifest_entry(f, "/etc/passwd", sha256(Path("/etc/passwd")))
    return check_argv(f, root, "manifest-lists-absolute-path")


def _linked_outside(root, name: str, rel: str, elsewhere: str):
    """A run whose `rel` is moved out of the folder and replaced by a symbolic link to it (same
    content: the manifest's sha256 matches through the link)."""
    f = copy_run(BASE_RUN, root / name / "results")
    outside = root / name / elsewhere
    shutil.move(f / rel, outside)
    os.symlink(outside, f / rel)
    return check_argv(f, root, name)


@hostile("case-is-a-symlink-outside", 2, "symbolic link")
def _(root):
    return _linked_outside(root, "case-is-a-symlink-outside", CASE, "elsewhere.json")


@hostile("env-is-a-symlink-outside", 2, "env.json: a symbolic link")
def _(root):
    return _linked_outside(root, "env-is-a-symlink-outside", "env.json", "env-elsewhere.json")


@hostile("cases-folder-is-a-symlink", 2, "cases: a symbolic link")
def _(root):
    return _linked_outside(root, "cases-folder-is-a-symlink", "cases", "cases-elsewhere")


@hostile("hidden-case-file", 2, "hidden entry")
def _(root):
    f = copy_run(BASE_RUN, root / "hidden-case-file" / "results")
    shutil.copy(f / CASE, f / "cases" / ".sdpa-flash-b32h8s8192d64-float16-full-warm-cuda.json")
    storage.write_manifest(f)
    return check_argv(f, root, "hidden-case-file")


@hostile("fifo-as-a-case", 2, "not a plain file")
def _(root):
    f = copy_run(BASE_RUN, root / "fifo-as-a-case" / "results")
    os.mkfifo(f / "cases" / "sdpa-flash-b32h8s8192d64-float16-full-warm-cuda.json")
    return check_argv(f, root, "fifo-as-a-case")


@hostile("manifest-is-a-list", 2, "expected a JSON object")
def _(root):
    f = copy_run(BASE_RUN, root / "manifest-is-a-list" / "results")
    (f / "manifest.json").write_text("[]\n")
    return check_argv(f, root, "manifest-is-a-list")


@hostile("manifest-digest-not-a-string", 2, "no sha256")
def _(root):
    f = copy_run(BASE_RUN, root / "manifest-digest-not-a-string" / "results")
    add_manifest_entry(f, "env.json", 5)  # type: ignore[arg-type]
    return check_argv(f, root, "manifest-digest-not-a-string")


@hostile("case-file-named-for-another-case", 2, "not the case its file name says")
def _(root):
    f = copy_run(BASE_RUN, root / "case-file-named-for-another-case" / "results")
    shutil.move(f / CASE, f / "cases" / "sdpa-cudnn-b32h8s8192d64-float16-full-warm-cuda.json")
    storage.write_manifest(f)
    return check_argv(f, root, "case-file-named-for-another-case")


@hostile("results-is-a-file", 2, "results folder not found")
def _(root):
    p = root / "results-is-a-file" / "results"
    p.parent.mkdir()
    p.write_text("{}\n")
    return check_argv(p, root, "results-is-a-file")


@hostile("twenty-thousand-files", 2, "more than 20000 entries")
def _(root):
    f = copy_run(BASE_RUN, root / "twenty-thousand-files" / "results")
    junk = f / "junk"
    junk.mkdir()
    for i in range(20_001):
        (junk / f"{i}.txt").touch()
    return check_argv(f, root, "twenty-thousand-files")


@hostile("verdict-json-is-a-folder", 2, "cannot write the verdict")
def _(root):
    f = copy_run(BASE_RUN, root / "verdict-json-is-a-folder" / "results")
    (f / "verdict.json").mkdir()
    return ("artifact", ["check", str(f), "--reference", str(H200_REF)], [f, H200_REF], [f])


@hostile("symlinked-case-without-reference", 2, "symbolic link")
def _(root):
    # check without --reference reads the shipped references, and still nothing outside the folder.
    f = copy_run(BASE_RUN, root / "symlinked-case-without-reference" / "results")
    outside = root / "symlinked-case-without-reference" / "elsewhere.json"
    shutil.move(f / CASE, outside)
    os.symlink(outside, f / CASE)
    out = root / "symlinked-case-without-reference" / "out"
    return ("artifact", ["check", str(f), "--out", str(out)], [f, REPO / "artifact" / "references"], [out])


@hostile("report-of-a-nan-folder", 2, "NaN is not valid JSON")
def _(root):
    f = copy_run(BASE_RUN, root / "report-of-a-nan-folder" / "results")
    edit_json(f, CASE, lambda d: d["timing"]["summary"].__setitem__("median_ms", float("nan")))
    out = root / "report-of-a-nan-folder" / "out"
    return ("artifact", ["report", str(f), "--out", str(out)], [f], [out])


# --------------------------------------------------------------------------- reference files
def ref_input(root: Path, name: str, text: str | bytes) -> tuple:
    f = root / name / "results"
    shutil.copytree(BASE_RUN, f)
    ref = root / name / "reference.yaml"
    ref.write_bytes(text if isinstance(text, bytes) else text.encode())
    return check_argv(f, root, name, ref)


def alias_bomb(levels: int, top: str = "") -> str:
    lines = [f"{top}a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels):
        lines.append(f"{top}a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


@hostile("reference-key-is-a-list", 2, "a key must be a plain name")
def _(root):
    return ref_input(root, "reference-key-is-a-list", "schema_version: 1\n? [a, b]\n: 1\n")


@hostile("reference-alias-bomb-10e9", 2, "expands to more than")
def _(root):
    return ref_input(root, "reference-alias-bomb-10e9", alias_bomb(9))


@hostile("reference-alias-bomb-10e8-in-a-claim", 2, "expands to more than")
def _(root):
    text = H200_REF.read_text()
    bomb = alias_bomb(8, top="    ")
    text = text.replace("environment:\n", "environment:\n  bombs:\n" + bomb.replace("    ", "    ", 1), 1)
    text = text.replace("      of: median time per run (ms)\n", "      of: *a7\n", 1)
    return ref_input(root, "reference-alias-bomb-10e8-in-a-claim", text)


@hostile("reference-nested-100000-deep", 2, "reference.yaml")
def _(root):
    return ref_input(root, "reference-nested-100000-deep", "a: " + "[" * 100_000 + "]" * 100_000 + "\n")


@hostile("reference-non-utf8", 2, "not UTF-8")
def _(root):
    return ref_input(root, "reference-non-utf8", H200_REF.read_bytes().replace(b"# Reference", b"# \xff Reference", 1))


@hostile("reference-nan-value", 2, "expected a finite number")
def _(root):
    text = H200_REF.read_text()
    first = text.index("  reference: ")
    end = text.index("\n", first)
    return ref_input(root, "reference-nan-value", text[:first] + "  reference: .nan" + text[end:])


@hostile("reference-of-5-mb", 2, "larger than 4 MiB")
def _(root):
    return ref_input(root, "reference-of-5-mb", H200_REF.read_text() + ("# padding\n" * 550_000))


@hostile("reference-is-a-folder", 2, "is a folder")
def _(root):
    f = copy_run(BASE_RUN, root / "reference-is-a-folder" / "results")
    d = root / "reference-is-a-folder" / "refs"
    d.mkdir()
    return check_argv(f, root, "reference-is-a-folder", d)


@hostile("reference-is-a-fifo", 2, "not a plain file")
def _(root):
    f = copy_run(BASE_RUN, root / "reference-is-a-fifo" / "results")
    fifo = root / "reference-is-a-fifo" / "reference.yaml"
    os.mkfifo(fifo)
    return check_argv(f, root, "reference-is-a-fifo", fifo)


# --------------------------------------------------------------------------- plans
def plan_input(root: Path, name: str, text: str | bytes | None) -> tuple:
    d = root / name
    d.mkdir()
    plan = d / "plan.yaml"
    if text is None:
        plan.mkdir()
    else:
        plan.write_bytes(text if isinstance(text, bytes) else text.encode())
    out = d / "out"
    return ("harness", ["bench", "--plan", str(plan), "--out", str(out), "--device", "cpu", "--no-progress"], [plan], [])


ONE_CASE = "cases:\n  - {backend: math, batch: 1, heads: 1, seq: 8, head_dim: 8}\n"


@hostile("plan-is-a-folder", 2, "is a folder")
def _(root):
    return plan_input(root, "plan-is-a-folder", None)


@hostile("plan-is-a-fifo", 2, "not a plain file")
def _(root):
    d = root / "plan-is-a-fifo"
    d.mkdir()
    os.mkfifo(d / "plan.yaml")
    return ("harness", ["bench", "--plan", str(d / "plan.yaml"), "--out", str(d / "out"), "--device", "cpu"], [d / "plan.yaml"], [])


@hostile("plan-non-utf8", 2, "not UTF-8")
def _(root):
    return plan_input(root, "plan-non-utf8", b"# \xff\n" + ONE_CASE.encode())


@hostile("plan-target-ci-nan", 2, "target_rel_ci: must be a finite number")
def _(root):
    return plan_input(root, "plan-target-ci-nan", "timing: {target_rel_ci: .nan}\n" + ONE_CASE)


@hostile("plan-max-time-inf", 2, "max_time_s: must be a finite number")
def _(root):
    return plan_input(root, "plan-max-time-inf", "timing: {max_time_s: .inf}\n" + ONE_CASE)


@hostile("plan-of-8kb-expanding-to-5m-cases", 2, "expands to 5000000 cases")
def _(root):
    axis = "[" + ", ".join(str(i) for i in range(1, 101)) + "]"
    text = f"cases:\n  - {{backend: [flash, efficient, cudnn, math, default], batch: {axis}, heads: {axis}, seq: {axis}, head_dim: [8]}}\n"
    assert len(text) < 8192
    return plan_input(root, "plan-of-8kb-expanding-to-5m-cases", text)


@hostile("plan-alias-bomb", 2, "expands to more than")
def _(root):
    return plan_input(root, "plan-alias-bomb", alias_bomb(9) + ONE_CASE)


@hostile("plan-key-is-a-list", 2, "malformed YAML")
def _(root):
    return plan_input(root, "plan-key-is-a-list", "? [a, b]\n: 1\n" + ONE_CASE)


@hostile("plan-a-billion-samples", 2, "max_samples")
def _(root):
    return plan_input(root, "plan-a-billion-samples", "timing: {max_samples: 1000000000}\n" + ONE_CASE)


# --------------------------------------------------------------------------- derive-reference
@hostile("derive-from-a-nan-median", 2, "NaN is not valid JSON")
def _(root):
    f = copy_run(BASE_RUN, root / "derive-from-a-nan-median" / "results")
    edit_json(f, CASE, lambda d: d["timing"]["summary"].__setitem__("median_ms", float("nan")))
    out = root / "derive-from-a-nan-median" / "ref.yaml"
    return ("artifact", ["derive-reference", str(f), str(BASE_RUN), "--out", str(out), "--min-runs", "1", "--min-machines", "1"],
            [f, BASE_RUN], [out.parent])


@hostile("derive-out-is-a-folder", 2, "is a folder")
def _(root):
    out = root / "derive-out-is-a-folder" / "ref.yaml"
    out.mkdir(parents=True)
    return ("artifact", ["derive-reference", str(BASE_RUN), "--out", str(out), "--min-runs", "1", "--min-machines", "1"],
            [BASE_RUN], [])


# --------------------------------------------------------------------------- running them
# Read by any run: the interpreter, the installed packages, this checkout's own modules (imported
# lazily) and the kernel's views of the process. Nothing else outside the inputs.
ALWAYS_READABLE = [Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix), REPO / "artifact", REPO / "harness",
                   Path("/proc"), Path("/sys"), Path("/dev/null"), Path("/dev/urandom"), Path("/etc/localtime"),
                   Path("/usr/share/zoneinfo"), Path("/usr/lib")]


# The import system lists the directories on sys.path (the checkout, the driver's folder) to
# find lazily imported modules; listing them reads no file.
LISTABLE = {REPO, Path(__file__).resolve().parent}


def _inside(path: str, roots: list[Path]) -> bool:
    p = Path(path)
    return any(p == r or r in p.parents for r in (Path(os.path.abspath(x)) for x in roots))


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    specs, allowed = [], {}
    for name, (build, _code, _text) in INPUTS.items():
        cli, argv, readable, writable = build(root)
        specs.append({"name": name, "cli": cli, "argv": argv})
        allowed[name] = ([*readable, *writable], writable)
    spec_file = root / "spec.json"
    spec_file.write_text(json.dumps(specs))
    cwd = root / "cwd"
    cwd.mkdir()
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(REPO)}
    env.pop("GITHUB_STEP_SUMMARY", None)
    proc = subprocess.run([sys.executable, str(Path(__file__).with_name("hostile_driver.py")), str(spec_file)],
                          capture_output=True, text=True, timeout=900, cwd=cwd, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {r["name"]: r for r in json.loads(proc.stdout)}, allowed, cwd


@pytest.mark.parametrize("name", list(INPUTS))
def test_hostile_input(report, name):
    results, allowed, cwd = report
    r = results[name]
    _build, code, text = INPUTS[name]
    err = r["stderr"]
    assert "Traceback" not in err and "internal error" not in err, err
    if code == -1:
        assert r["code"] in (0, 1), (r["code"], err)  # a verdict, whichever it is
    else:
        assert r["code"] == code, (r["code"], err)
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), err
        assert text in lines[0], lines[0]
    assert r["seconds"] < MAX_SECONDS
    assert r["maxrss_mb"] < MAX_RSS_MB
    readable, writable = allowed[name]
    roots = [*ALWAYS_READABLE, *readable, cwd]
    for kind, path, write in r["events"]:
        if write or kind != "open" and kind != "list":
            assert _inside(path, writable), f"{name}: {kind} {path} outside {writable}"
        elif not (kind == "list" and Path(path) in LISTABLE):
            assert _inside(path, roots), f"{name}: read {path} outside the inputs"
            real = r["realpaths"][path]
            assert _inside(real, roots), f"{name}: read {path} -> {real} outside the inputs (followed a link)"
