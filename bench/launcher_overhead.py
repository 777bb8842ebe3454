"""Measure what the container costs: image size, time from `artifact run` to the first
measurement, and the launcher's overhead over a native run of the same smoke profile.

    python bench/launcher_overhead.py [--rounds 5] [--image REF]

Each round runs `artifact run --profile smoke` once with --runtime docker and once with
--runtime native (alternating which goes first), as a user would: a fresh process, timed from
just before it is spawned. "First measurement" is the moment the first case file appears in the
output folder (polled every 10 ms), i.e. the first finished, written measurement. Overhead is
docker minus native, per round, for both the total and the first measurement; the summary gives
their medians and ranges. Writes bench/launcher_overhead.json and bench/launcher_overhead.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))


def timed_run(runtime: str, out: Path, image: str) -> dict:
    cmd = [sys.executable, "-m", "artifact.cli", "run", "--runtime", runtime, "--profile", "smoke",
           "--out", str(out), "--image", image]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    first = None
    while proc.poll() is None:
        if first is None and (out / "cases").is_dir() and any((out / "cases").glob("*.json")):
            first = time.perf_counter() - t0
        time.sleep(0.01)
    total = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"error: `{' '.join(cmd)}` exited {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}")
    run = json.loads((out / "run.json").read_text())
    cases = len(list((out / "cases").glob("*.json")))
    return {"runtime": runtime, "total_s": round(total, 3), "first_measurement_s": round(first, 3) if first else None,
            "cases": cases, "launcher_first_result_s": run["attempts"][-1]["first_result_s"],
            "notes": run["attempts"][-1]["notes"]}


def lifecycle(image: str, n: int) -> list[float]:
    """Seconds for the launcher's whole container lifecycle around `true` (create with every
    lockdown setting, start, wait, remove): the fixed cost a docker run adds."""
    from artifact.launch.docker_engine import connect
    from artifact.launch.runtime_docker import ContainerPlan, container_user, run_container

    client = connect()
    times = []
    with tempfile.TemporaryDirectory(prefix="lifecycle-") as tmp:
        for _ in range(n):
            plan = ContainerPlan(image=image, command=["true"], out=Path(tmp), user=container_user())
            t0 = time.perf_counter()
            outcome = run_container(client, plan, timeout_s=60, log=lambda line: None)
            times.append(round(time.perf_counter() - t0, 3))
            assert outcome.exit_code == 0, outcome
    return times


def machine() -> dict:
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), platform.processor())
    from artifact.launch.docker_engine import connect, engine_info

    engine = engine_info(connect())
    return {"cpu": cpu, "cpu_count": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version(),
            "docker_engine": engine.engine_version, "docker_api": engine.api_version, "docker_os": engine.os}


def summarise(rounds: list[dict]) -> dict:
    def stats(values: list[float]) -> dict:
        return {"median": round(statistics.median(values), 3), "min": round(min(values), 3), "max": round(max(values), 3)}

    d = [r["docker"] for r in rounds]
    n = [r["native"] for r in rounds]
    return {
        "docker_total_s": stats([x["total_s"] for x in d]),
        "native_total_s": stats([x["total_s"] for x in n]),
        "docker_first_measurement_s": stats([x["first_measurement_s"] for x in d]),
        "native_first_measurement_s": stats([x["first_measurement_s"] for x in n]),
        "overhead_total_s": stats([a["total_s"] - b["total_s"] for a, b in zip(d, n)]),
        "overhead_first_measurement_s": stats([a["first_measurement_s"] - b["first_measurement_s"] for a, b in zip(d, n)]),
    }


def markdown(result: dict) -> str:
    s, m = result["summary"], result["machine"]
    target = result["target_overhead_s"]
    verdict = "meets" if s["overhead_first_measurement_s"]["median"] < target else "misses"
    rows = "\n".join(
        f"| {i + 1} | {r['docker']['first_measurement_s']:.2f} | {r['native']['first_measurement_s']:.2f} | "
        f"{r['docker']['total_s']:.2f} | {r['native']['total_s']:.2f} |" for i, r in enumerate(result["rounds"]))
    fmt = lambda k: f"{s[k]['median']:.2f} s (range {s[k]['min']:.2f} to {s[k]['max']:.2f})"  # noqa: E731
    return f"""# Launcher overhead: the pinned container vs a native run (smoke profile)

Generated by `{result['command']}` on {result['date']} from bench/launcher_overhead.json.

Machine: {m['cpu']}, {m['cpu_count']} cores, Linux {m['kernel']}, Docker engine {m['docker_engine']} (API {m['docker_api']}),
host Python {m['python']}; no GPU (the smoke profile runs on the CPU in both cases). 1-minute load
average {m['loadavg_1min_before_after'][0]} before and {m['loadavg_1min_before_after'][1]} after (other work shared the machine).

Image `{result['image']['ref']}` ({result['image']['id'][:19]}): **{result['image']['size_bytes'] / 1e9:.2f} GB**
({result['image']['size_bytes']} bytes uncompressed, as `docker images` reports it).

| | median over {len(result['rounds'])} rounds |
|---|---|
| `artifact run` to the first measurement, docker | {fmt('docker_first_measurement_s')} |
| `artifact run` to the first measurement, native | {fmt('native_first_measurement_s')} |
| launcher overhead to the first measurement (docker - native) | {fmt('overhead_first_measurement_s')} |
| whole smoke run, docker | {fmt('docker_total_s')} |
| whole smoke run, native | {fmt('native_total_s')} |
| overhead on the whole run (docker - native) | {fmt('overhead_total_s')} |

The container's fixed cost, measured apart: create (with every lockdown setting), start, wait and
remove around `true` takes {statistics.median(result['container_lifecycle_s']):.2f} s (median of
{len(result['container_lifecycle_s'])}; range {min(result['container_lifecycle_s']):.2f} to {max(result['container_lifecycle_s']):.2f} s).

The target is an overhead under {target:g} s: the median overhead to the first measurement {verdict} it.
The whole-run difference also contains the run-to-run spread of the adaptive sampling (each case
samples until its confidence interval is tight enough), so it is noisier than the first-measurement one.

Per round (seconds; docker and native alternate which runs first):

| round | docker first | native first | docker total | native total |
|---|---|---|---|---|
{rows}

Notes the launcher recorded: {'; '.join(sorted({n for r in result['rounds'] for n in r['docker']['notes']})) or 'none'}.
"""


def main() -> int:
    from artifact.launch.docker_engine import connect
    from artifact.launch.image import default_image, image_info

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--image", default=default_image("cpu"))
    ap.add_argument("--out", type=Path, default=HERE / "launcher_overhead.json")
    args = ap.parse_args()
    info = image_info(connect(), args.image)
    load_before = os.getloadavg()
    rounds = []
    with tempfile.TemporaryDirectory(prefix="overhead-") as tmp:
        for i in range(args.rounds):
            order = ("docker", "native") if i % 2 == 0 else ("native", "docker")
            r = {rt: timed_run(rt, Path(tmp) / f"{i}-{rt}", args.image) for rt in order}
            rounds.append({"docker": r["docker"], "native": r["native"]})
            print(f"round {i + 1}: docker first {r['docker']['first_measurement_s']:.2f} s total {r['docker']['total_s']:.2f} s; "
                  f"native first {r['native']['first_measurement_s']:.2f} s total {r['native']['total_s']:.2f} s", file=sys.stderr)
    result = {
        "command": "python bench/launcher_overhead.py " + " ".join(sys.argv[1:]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {**machine(), "loadavg_1min_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)]},
        "image": {"ref": args.image, "id": info.id, "size_bytes": info.size_bytes, "base_digest": info.base_digest},
        "target_overhead_s": 5.0,
        "rounds": rounds,
        "summary": summarise(rounds),
        "container_lifecycle_s": lifecycle(args.image, 10),
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(result))
    print(f"wrote {args.out} and {args.out.with_suffix('.md')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
