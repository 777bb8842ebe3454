"""What misled or annoyed a new reviewer (issue 12), one test per item: a mistaken reference,
a wall of SKIP rows, interrupted and foreign folders, advice that does not parse, noise on a
CPU-only host, and the Docker engine script's decision."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import cliparse
import pytest
from testkit import REPO, copy_run

REFS = REPO / "artifact" / "references"
CPU_RUN = Path(__file__).resolve().parent / "data" / "cpu-smoke-runs" / "run-1"
H200_RUN = REPO / "bench" / "h200" / "machine-D" / "run-D1"


def cli(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "artifact.cli", *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})}, cwd=REPO)



# --------------------------------------------------------------------------- a mistaken --reference
def test_mistaken_reference_says_so_once_and_keeps_the_earlier_verdict(tmp_path):
    run = copy_run(CPU_RUN, tmp_path / "run")
    assert cli("check", str(run)).returncode == 0
    before = (run / "verdict.md").read_text()
    assert "## Verdict: PASS" in before

    wrong = cli("check", str(run), "--reference", str(REFS / "h100.yaml"))
    assert wrong.returncode == 2
    lines = [ln for ln in (wrong.stdout + wrong.stderr).splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: no claim of h100 applies"), lines
    assert (run / "verdict.md").read_text() == before
    assert sorted(p.name for p in run.glob("verdict*")) == ["verdict.json", "verdict.md"]

    report = cli("report", str(run), "--reference", str(REFS / "h100.yaml"), "--out", str(tmp_path / "rep"))
    assert report.returncode == 2 and "no claim of h100 applies" in report.stderr
    assert not (tmp_path / "rep" / "report.md").exists()


def test_a_second_applicable_reference_gets_its_own_verdict_files(tmp_path):
    run = copy_run(H200_RUN, tmp_path / "run")
    assert cli("check", str(run), "--reference", str(REFS / "h200.yaml")).returncode == 0
    first = (run / "verdict.json").read_text()
    assert cli("check", str(run), "--reference", str(REFS / "h100.yaml")).returncode == 0
    assert (run / "verdict.json").read_text() == first
    assert json.loads((run / "verdict-h100.json").read_text())["reference_name"] == "h100"


# --------------------------------------------------------------------------- SKIPs grouped by reason
def test_skips_are_grouped_by_reason_behind_the_judged_rows(tmp_path):
    run = copy_run(H200_RUN, tmp_path / "run")
    res = cli("check", str(run), "--reference", str(REFS / "h100.yaml"), env={"COLUMNS": "200"})
    assert res.returncode == 0, res.stderr
    scope = "30 claims out of scope: claim is for NVIDIA H100 80GB HBM3; results ran on NVIDIA H200"
    md = (run / "verdict.md").read_text()
    head = md.split("\n\n")[1]
    assert head.startswith("Checked 19 of 49 claims of h100") and scope in head
    rows = [ln for ln in md.splitlines() if ln.startswith("| ") and "**" in ln]
    assert [r for r in rows if "**SKIP**" in r] == [rows[-1]] and "| 30 claims |" in rows[-1]
    assert len(rows) == 19 + 1
    console = res.stdout
    assert console.count("SKIP ") <= 2 and "30 claims" in console and console.lstrip().startswith("Checked 19 of 49")
    report = cli("report", str(run), "--reference", str(REFS / "h100.yaml"), "--out", str(tmp_path / "rep"))
    assert report.returncode == 0, report.stderr
    text = (tmp_path / "rep" / "report.md").read_text()
    assert scope in text and text.count("| **SKIP** |") == 1


# --------------------------------------------------------------------------- advice that runs
_BACKTICKED = re.compile(r"`((?:artifact|harness) [^`]*)`")


def _advice_in_sources() -> list[tuple[str, str]]:
    """Every `artifact ...` / `harness ...` command line quoted in the code's messages, with its
    placeholders ({out}, OUT, FILE, ...) given a value."""
    found = []
    for path in sorted([*(REPO / "artifact").glob("*.py"), *(REPO / "harness").rglob("*.py")]):
        for m in _BACKTICKED.finditer(path.read_text(encoding="utf-8")):
            text = m.group(1)
            text = re.sub(r"\{[^{}]*\}", "x", text)  # f-string fields
            text = re.sub(r"\.\.\.", "", text)
            found.append((f"{path.relative_to(REPO)}", text))
    return found


def test_every_command_line_in_the_code_s_advice_parses():
    advice = _advice_in_sources()
    assert len(advice) > 10
    bad = []
    for where, text in advice:
        if "<" in text or " | " in text:  # `harness <args>`, `artifact doctor | build | run | gc`: not a line to type
            continue
        try:
            cliparse.parse(text)
        except AssertionError as exc:
            # `artifact check` names a command in prose; what it names must exist, and every
            # option it gives must be one the command takes, with a value where it needs one.
            if "Missing argument" in str(exc) or "Missing option" in str(exc):
                continue
            bad.append(f"{where}: {exc}")
    assert not bad, "\n".join(bad)


@pytest.fixture
def docker_run_interrupted(monkeypatch):
    """A Docker run whose container is interrupted (Ctrl-C) as it starts; no engine needed."""
    from artifact.launch import runtime_select
    from artifact.launch.runtime_select import Choice

    monkeypatch.setattr(runtime_select, "choose", lambda *a, **k: Choice("docker", "requested", object(), None))
    monkeypatch.setattr("artifact.launch.docker_engine.engine_info", lambda client: None)
    monkeypatch.setattr("artifact.launch.image.image_info", lambda client, image: None)

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr("artifact.launch.runtime_docker.run_container", interrupted)


def test_interrupted_docker_run_advises_a_resume_that_keeps_its_runtime(tmp_path, docker_run_interrupted):
    from artifact.launch import run as launch

    notes: list[str] = []
    opts = launch.RunOptions(runtime="docker", out=tmp_path / "out", profile="smoke", gpus="none",
                             harness_args=["--max-time", "0.5"])
    assert launch.launch(opts, echo=lambda s: None, note=notes.append) == launch.EXIT_INTERRUPTED
    advice = re.search(r"`([^`]*)` completes the rest", notes[-1]).group(1)
    cliparse.parse(advice)
    argv = shlex.split(advice)
    assert argv[argv.index("--runtime") + 1] == "docker" and "--resume" in argv
    assert argv[argv.index("--profile") + 1] == "smoke" and argv[-2:] == ["--max-time", "0.5"]


@pytest.mark.parametrize("command", ["build", "gc", "export"])
def test_docker_commands_offer_only_options_they_have(command, tmp_path):
    res = cli(command, env={"DOCKER_HOST": f"unix://{tmp_path}/nothing.sock"}, timeout=120)
    assert res.returncode == 2 and res.stderr.startswith("error: Docker daemon not reachable")
    bare = re.sub(r"`[^`]*`", "", res.stderr)
    named = set(re.findall(r"(?<![\w-])--[a-z][\w-]*", bare))
    assert named <= cliparse.options_of("artifact", command), named


# --------------------------------------------------------------------------- a CPU-only host
def test_cpu_only_host_gets_a_short_reason_and_no_gpu_preflight():
    from artifact.launch import runtime_select

    def no(*a, **k):
        raise AssertionError("no GPU preflight on a host without an NVIDIA driver")

    probes = runtime_select.Probes(connect=lambda: object(), torch_variant=lambda c, i: "cpu", preflight_gpu=no,
                                   host_gpu=lambda: False)
    choice = runtime_select.choose("auto", "img", None, False, probes)
    assert choice.runtime == "native" and len(choice.reason) < 160 and "toolkit" not in choice.reason.lower()
    assert "--runtime docker --gpus none" in choice.reason


def test_cpu_container_asks_for_no_gpu_ulimits(tmp_path):
    from artifact.launch import runtime_docker

    cpu = runtime_docker.ContainerPlan(image="i", command=["true"], out=tmp_path).create_kwargs()
    gpu = runtime_docker.ContainerPlan(image="i", command=["true"], out=tmp_path, gpus=[]).create_kwargs()
    assert cpu["ulimits"] == [] and {u["Name"] for u in gpu["ulimits"]} == {"memlock", "stack"}


def test_native_run_from_the_matched_lock_ticks_the_checklist():
    from types import SimpleNamespace

    from artifact.report import single as report
    from artifact.results import folder

    rs, note = folder.load_results(CPU_RUN)
    # run.json's typed record, reduced to the fields the checklist reads
    lock = SimpleNamespace(file="/x/.venv-reproduce/requirements-cpu.lock", matches=True)
    rs.run = SimpleNamespace(runtime="native", runtime_reason="auto: no NVIDIA GPU on this host", image=None,
                             package_lock=lock)
    lines = report._checklist(rs, note, None)
    assert any(ln.startswith("- [x] ran natively in packages that match requirements-cpu.lock") for ln in lines), lines
    lock.matches = False
    assert any(ln.startswith("- [ ] ran with runtime native") for ln in report._checklist(rs, note, None))


def test_build_passes_only_the_build_args_of_the_stages_it_builds():
    from artifact.launch import image

    seen = []

    class Api:
        def build(self, **kw):
            seen.append(kw)
            return iter([])

    class Client:
        api = Api()

    every = {a: "v" for a in image.declared_args((REPO / "Dockerfile").read_text(), None)}
    for target in ("install", None):
        image._build_one(Client(), None, "t", target, dict(every), False, True, lambda s: None)
    assert set(seen[0]["buildargs"]) == {"BASE_IMAGE", "WHEELS", "TORCH_VARIANT", "VENV_EPOCH", "SOURCE_DATE_EPOCH"}
    assert set(seen[1]["buildargs"]) == set(every)


def test_help_of_every_command_names_no_type_placeholders():
    placeholder = re.compile(r"<(?:bool|str|int|float|path|text|file|directory)>|\{[a-z_]+\}|\w+ range>")
    for program in ("artifact", "harness"):
        for command in ["", *cliparse.commands_of(program)]:
            res = subprocess.run([sys.executable, "-m", f"{program}.cli", *([command] if command else []), "--help"],
                                 capture_output=True, text=True, timeout=120, cwd=REPO,
                                 env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"})
            assert res.returncode == 0, (program, command, res.stderr)
            assert not placeholder.findall(res.stdout), (program, command, placeholder.findall(res.stdout))


# --------------------------------------------------------------------------- interrupted and foreign folders
FLAGS_RUN = ["--seq", "64", "--backends", "math", "--batch", "2", "--heads", "4", "--head-dim", "32", "--dtype", "float32",
             "--device", "cpu", "--max-time", "0.05", "--no-census", "--no-ceilings", "--no-progress"]


def harness(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=REPO)


@pytest.fixture(scope="module")
def flags_run(tmp_path_factory) -> Path:
    """A real (tiny) CPU run of a flag set: a folder of another kind than the smoke reference's."""
    out = tmp_path_factory.mktemp("flags") / "run"
    res = harness("bench", "--out", str(out), *FLAGS_RUN)
    assert res.returncode == 0, res.stderr
    return out


def test_a_folder_of_another_plan_is_not_judged_as_failed(flags_run, tmp_path):
    run = copy_run(flags_run, tmp_path / "run")
    res = cli("check", str(run), "--reference", str(REFS / "cpu-smoke.yaml"))
    assert res.returncode == 2, res.stdout + res.stderr
    assert res.stderr.startswith("error: these results are not of the kind cpu-smoke describes")
    assert len(res.stderr.strip().splitlines()) == 1 and not list(run.glob("verdict*"))


def test_harness_resume_refuses_a_folder_of_another_configuration(flags_run, tmp_path):
    run = copy_run(flags_run, tmp_path / "run")
    before = sorted(p.name for p in (run / "cases").iterdir())
    other = harness("bench", "--out", str(run), "--resume", *FLAGS_RUN[:-5], "--max-time", "0.05", "--target-ci", "0.05",
                    "--no-census", "--no-ceilings", "--no-progress")
    assert other.returncode == 2 and "timing.target_rel_ci is 0.01, this run's is 0.05" in other.stderr, other.stderr
    smoke = harness("bench", "--out", str(run), "--resume", "--profile", "smoke", "--device", "cpu", "--no-progress")
    assert smoke.returncode == 2 and "this run's is 0.02 (profile:smoke)" in smoke.stderr, smoke.stderr
    assert len(smoke.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in (run / "cases").iterdir()) == before


def test_an_interrupted_run_is_checked_with_the_command_that_completes_it(tmp_path, docker_run_interrupted):
    from artifact.launch import run as launch

    out = tmp_path / "out"  # interrupted before the first case: no env.json
    launch.launch(launch.RunOptions(runtime="docker", out=out, profile="smoke"), echo=lambda s: None, note=lambda s: None)
    res = cli("check", str(out))
    assert res.returncode == 2 and "env.json" not in res.stderr
    assert "the run stopped before it finished (status interrupted, 0 case(s) kept)" in res.stderr
    advice = re.search(r"`([^`]*)`, then check again", res.stderr).group(1)
    cliparse.parse(advice)
    assert "--runtime docker --resume" in advice and "--profile smoke" in advice


# --------------------------------------------------------------------------- the engine script's decision
def test_ensure_engine_decides_by_the_socket_it_will_use(tmp_path):
    """A running dockerd on another socket is not an engine for this one: the script must plan to
    start one (checked with --check, which changes nothing, so the running engine is untouched)."""
    import socket

    script = REPO / "docker" / "ensure_engine.sh"
    bound = tmp_path / "bound.sock"  # a socket file nothing accepts on
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(bound))
    try:
        for path in (tmp_path / "nothing.sock", bound):
            res = subprocess.run(["bash", str(script), "--check"], capture_output=True, text=True, timeout=60,
                                 env={**os.environ, "DOCKER_HOST": f"unix://{path}", "CI": ""})
            assert res.returncode == 0 and res.stdout.strip() == f"ensure_engine: start unix://{path}", res.stdout + res.stderr
    finally:
        s.close()
    if Path("/var/run/docker.sock").is_socket():
        res = subprocess.run(["bash", str(script), "--check"], capture_output=True, text=True, timeout=60,
                             env={k: v for k, v in os.environ.items() if k != "DOCKER_HOST"})
        assert res.stdout.split()[1] in ("use", "wait"), res.stdout


@pytest.mark.parametrize("cases,code,next_line", [(False, 4, False), (True, 1, True), (True, 130, False)])
def test_make_reproduce_points_to_the_report_only_when_there_are_results(tmp_path, cases, code, next_line):
    # A run refused before any case (another process on the GPU, exit 4) leaves env.json and a
    # manifest but nothing to report: "next: artifact report" would send the reviewer to an empty
    # report. The recipe runs as written, with a stand-in for the venv's artifact.
    import stat

    fake = tmp_path / ".venv-fake" / "bin" / "artifact"
    fake.parent.mkdir(parents=True)
    fake.write_text("#!/usr/bin/env bash\nmkdir -p results/t; echo {} > results/t/manifest.json\n"
                    + ("mkdir -p results/t/cases; echo {} > results/t/cases/c.json\n" if cases else "")
                    + f"exit {code}\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    proc = subprocess.run(["make", "-s", "-f", str(REPO / "Makefile"), "-o", ".venv-fake/.installed", "-o", "reproduce-image",
                           "reproduce", "REPRO_VENV=.venv-fake", "STAMP=t"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode != 0 and f"Error {code}" in proc.stderr
    assert ("next: .venv-fake/bin/artifact report results/t" in proc.stdout) is next_line
