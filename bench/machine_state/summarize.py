"""bench/machine_state/<gpu>/SUMMARY.md from the device run's files (run.sh): the refusal, the run
allowed to share, the run a neighbour interrupted, what the watch costs. Every number is read from
the logs and result files.

    python bench/machine_state/summarize.py bench/machine_state/h200
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path


def _cases(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((folder / "cases").glob("*.json"))]


def _verdict(folder: Path) -> dict:
    return json.loads((folder / "verdict.json").read_text())


def _scenario_line(log: str, key: str) -> str:
    m = re.search(rf"^=== {key} rc=(\d+) in (\d+) ms", log, re.M)
    return f"make's exit {m.group(1)}, {int(m.group(2)) / 1000:.1f} s wall" if m else "not found in the log"


def refused(run: Path, log: str) -> list[str]:
    text = (run / "a.txt").read_text()
    err = next((ln for ln in text.splitlines() if "the GPU is shared" in ln), "no refusal line")
    code = re.search(r"Error (\d+)", text)
    return ["## a. A neighbour computing before the start: refused", "",
            f"`make reproduce`: {_scenario_line(log, 'a')}; the artifact's exit code "
            f"{code.group(1) if code else '?'} (make reports it as `Error N`).", "", f"> {err.strip()}", ""]


def _verdict_lines(folder: Path) -> list[str]:
    v = _verdict(folder)
    c = v["counts"]
    cases = _cases(folder)
    statuses: dict[str, int] = {}
    for case in cases:
        statuses[case["status"]] = statuses.get(case["status"], 0) + 1
    env = json.loads((folder / "env.json").read_text())
    gate = (env.get("machine") or {}).get("why", "-")
    return [f"- verdict {v['status']}" + (f" ({v['cause']})" if v.get("cause") else "") + f", exit {v['exit_code']}: "
            f"{c['PASS']} PASS, {c['FAIL']} FAIL, {c['SKIP']} SKIP",
            f"- cases: {len(cases)}: " + ", ".join(f"{n} {s}" for s, n in sorted(statuses.items())),
            f"- the gate: {gate}",
            *(f"- note: {n}" for n in v["notes"][:2])]


def allowed(run: Path, log: str) -> list[str]:
    folder = run / "allowed"
    head = ["## b. A neighbour, `--allow-shared-gpu`", ""]
    if not (folder / "verdict.json").is_file():
        return head + ["Not run to the end: the device call ended first (the log shows where).", ""]
    return head + [f"`make reproduce`: {_scenario_line(log, 'b')}.", "", *_verdict_lines(folder), ""]


def midrun(run: Path, log: str) -> list[str]:
    folder = run / "midrun"
    rc = (run / "c-rc.txt").read_text().strip() if (run / "c-rc.txt").is_file() else ""
    code = re.search(r"Error (\d+)", (run / "c.txt").read_text()) if (run / "c.txt").is_file() else None
    neighbour = (run / "neighbour-c.txt").read_text().strip() if (run / "neighbour-c.txt").is_file() else "-"
    out = ["## c. A neighbour started mid-run for 6 s", "",
           f"`make reproduce`: {_scenario_line(rc, 'c')}; the artifact's exit code {code.group(1) if code else 0} "
           f"(the worst over every fitting reference). The neighbour: {neighbour}.", "",
           "The primary reference:", *_verdict_lines(folder), ""]
    for extra in sorted(folder.glob("verdict-*.json")):
        v = json.loads(extra.read_text())
        c = v["counts"]
        out.append(f"- also {extra.name}: {v['status']}, exit {v['exit_code']}: {c['PASS']} PASS, {c['FAIL']} FAIL, "
                   f"{c['SKIP']} SKIP")
    out += ["",
            "Cases whose watch discarded a batch:", "",
           "| case | batches | discarded (neighbour) | discarded (throttle) | waited s | shared | other processes seen |",
           "|---|---|---|---|---|---|---|"]
    for case in _cases(folder):
        w = case.get("watch") or {}
        if w.get("discarded_foreign") or w.get("discarded_throttled") or w.get("shared"):
            seen = "; ".join(f"PID {p['pid']} {p.get('used_memory_mib')} MiB" for p in w.get("foreign", []))
            out.append(f"| {case['case']['backend']} S={case['case']['seq']} | {w['batches']} | {w['discarded_foreign']} | "
                       f"{w['discarded_throttled']} | {w['waited_s']:g} | {w['shared']} | {seen} |")
    return out + [""]


def gpu_tests(log: str) -> list[str]:
    """e: the watch's GPU tests (tests/harness/machine -k gpu) in the real timing loop."""
    part = log.split("=== e:", 1)[1].split("=== f:", 1)[0] if "=== e:" in log else ""
    m = re.search(r"^(\d+ passed.*|.*\d+ failed.*)$", part, re.M)
    return ["## e. The watch's GPU tests (`tests/harness/machine -k gpu`)", "",
            m.group(0).strip() if m else "Not run: the device call ended first.", ""]


def cost(log: str) -> list[str]:
    m = re.search(r"^watch: .*$", log, re.M)
    return ["## What the watch costs", "", m.group(0) if m else "Not measured: the device call ended first.", ""]


def main(argv: list[str]) -> int:
    run = Path(argv[0]) if argv else Path(__file__).resolve().parent / "h200"
    log = (run / "log-ms.txt").read_text()
    gpu = next((ln for ln in log.splitlines() if ln.startswith("GPU 0:")), "GPU ?")
    text = "\n".join([f"# Issue 17 on a GPU: {gpu}", "", "Generated by bench/machine_state/summarize.py from this folder.", "",
                      *refused(run, log), *allowed(run, log), *midrun(run, log), *gpu_tests(log), *cost(log)])
    (run / "SUMMARY.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
