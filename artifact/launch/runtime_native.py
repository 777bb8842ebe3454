"""Run the harness on the host's own Python, in a subprocess, with the same arguments as in the
container. Used when Docker or its NVIDIA runtime is missing, or when asked for (--runtime native).
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from artifact.errors import ArtifactError
from harness import lockcheck

STOP_GRACE_S = 20


def harness_command(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "harness.cli", *args]


def check_native_python() -> None:
    """The native path needs torch in this interpreter; say so up front instead of a traceback."""
    if importlib.util.find_spec("torch") is None:
        raise ArtifactError(f"--runtime native needs torch in this Python ({sys.executable}); install it with "
                            "`pip install -e '.[harness]'`, or use --runtime docker")


@dataclass
class NativeOutcome:
    exit_code: Optional[int]
    status: str  # completed | interrupted | timeout | failed
    first_result_s: Optional[float]


def installed_lock() -> Optional[Path]:
    """The lock this Python's environment was installed from: ARTIFACT_LOCK_FILE, else the copy
    `make reproduce` leaves in its venv (docker/reproduce_env.sh), else None."""
    named = os.environ.get(lockcheck.ENV_VAR)
    if named:
        return Path(named)
    copies = sorted(Path(sys.prefix).glob("requirements-*.lock"))
    return copies[0] if copies else None


def run_native(args: list[str], out: Path, *, timeout_s: Optional[float], log: Callable[[str], None],
               t0: Optional[float] = None, lock: Optional[Path] = None) -> NativeOutcome:
    """Run `harness <args>`; Ctrl-C/SIGTERM are passed on as SIGTERM, so the harness keeps every
    finished case; KeyboardInterrupt is re-raised afterwards with `exc.outcome` attached."""
    t0 = time.monotonic() if t0 is None else t0
    known = {p.name for p in (out / "cases").glob("*.json")} if (out / "cases").is_dir() else set()
    first: list[float] = []

    def poll_first() -> None:
        cases = out / "cases"
        if not first and cases.is_dir() and any(p.name not in known for p in cases.glob("*.json")):
            first.append(time.monotonic() - t0)

    # Its own process group: a terminal's Ctrl-C reaches only the launcher, which decides.
    env = {**os.environ, lockcheck.ENV_VAR: str(lock)} if lock is not None else None
    proc = subprocess.Popen(harness_command(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True, env=env)

    def pump() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            log(raw.decode("utf-8", "replace").rstrip("\n"))

    reader = threading.Thread(target=pump, daemon=True, name="native-logs")
    reader.start()
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    status: Optional[str] = None
    try:
        while proc.poll() is None:
            time.sleep(0.2)
            poll_first()
            if deadline is not None and time.monotonic() > deadline:
                status = "timeout"
                log(f"launcher: wall-clock timeout of {timeout_s:g} s reached; stopping the harness")
                _stop(proc)
                break
    except KeyboardInterrupt as exc:
        log("launcher: interrupted; stopping the harness (finished cases are kept)")
        _stop(proc)
        reader.join(5)
        poll_first()
        exc.outcome = NativeOutcome(proc.returncode, "interrupted", first[0] if first else None)  # type: ignore[attr-defined]
        raise
    reader.join(5)
    poll_first()
    code = proc.returncode
    if status is None:
        status = "completed" if code == 0 else ("interrupted" if code == 130 else "failed")
    return NativeOutcome(code, status, first[0] if first else None)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
