"""Stop a real Docker daemon and get the clear error.

The suite's main engine keeps serving the other tests, so this starts a second dockerd of its own
(the `own_daemon` fixture of tests/conftest.py), checks the launcher sees it, stops it with
SIGTERM as `systemctl stop docker` would, and checks what the launcher says then: one line naming
the socket and the fix, exit 2; and `--runtime auto` runs natively, saying why."""

from __future__ import annotations

import signal

import pytest

from artifact.results.folder import load_run_info
from harness.storage import load_cases

pytestmark = pytest.mark.docker


def test_stopping_the_daemon_gives_the_clear_error(own_daemon, artifact_cli, tmp_path):
    env = own_daemon["env"]
    up = artifact_cli("doctor", "--no-preflight", env=env, timeout=120)
    daemon_line = next(l for l in up.stdout.splitlines() if " daemon " in f" {l} ")
    assert daemon_line.startswith("OK") and str(own_daemon["socket"]) in daemon_line, up.stdout + up.stderr

    own_daemon["proc"].send_signal(signal.SIGTERM)  # what `systemctl stop docker` does
    assert own_daemon["proc"].wait(60) == 0

    proc = artifact_cli("run", "--runtime", "docker", "--out", str(tmp_path / "docker"), env=env, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    (line,) = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
    assert f"socket {own_daemon['socket']} does not exist" in line and "dockerd" in line
    assert "--runtime native" in line

    out = tmp_path / "auto"
    proc = artifact_cli("run", "--runtime", "auto", "--out", str(out), "--", "--seq", "32", "--backends", "math",
                        "--batch", "1", "--heads", "1", "--head-dim", "16", "--dtype", "float32", "--device", "cpu",
                        env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    run = load_run_info(out)
    # auto says why it ran natively: on a GPU host the stopped daemon, on a CPU host (CI) the
    # missing GPU, which decides before the daemon is asked.
    assert run.runtime == "native" and ("does not exist" in run.runtime_reason or "no NVIDIA GPU" in run.runtime_reason)
    assert len(load_cases(out)) == 1
