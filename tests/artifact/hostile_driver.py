"""Runs hostile inputs through the real command lines, in one process, and reports what each did.

    python tests/artifact/hostile_driver.py SPEC.json  ->  JSON on stdout

SPEC is a list of {"name", "cli": "artifact" | "harness", "argv": [...]}. For each input the
driver records the exit code, stdout and stderr, the seconds it took, the peak resident memory
so far, and every file the process opened, listed, created, renamed or removed while it ran (a
Python audit hook sees every one of those). tests/artifact/test_hostile.py judges the report.
Resident memory is also capped (RLIMIT_AS) so that a regression that allocates in proportion to
a hostile input fails the test with MemoryError instead of exhausting the test machine.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import resource
import signal
import sys
import time
import traceback

ADDRESS_SPACE_LIMIT = 6 * 2**30
HANG_SECONDS = 120


class Hang(BaseException):
    """Raised by the alarm: BaseException, so no `except Exception` in the CLI swallows it."""


def _alarm(signum, frame):  # noqa: ARG001
    raise Hang()

_events: list[tuple[str, str, bool]] = []
_recording = [False]
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def _path(p: object) -> str | None:
    if isinstance(p, bytes):
        p = p.decode("utf-8", "replace")
    if isinstance(p, os.PathLike):
        p = os.fspath(p)
    if not isinstance(p, str):
        return None  # a file descriptor: its path was seen when it was opened
    return os.path.abspath(p)


def _hook(event: str, args: tuple) -> None:
    if not _recording[0]:
        return
    if event == "open":
        path = _path(args[0])
        if path is None:
            return
        mode, flags = args[1], args[2]
        write = bool(mode and any(c in mode for c in "wax+")) or bool(isinstance(flags, int) and flags & _WRITE_FLAGS)
        _events.append(("open", path, write))
    elif event in ("os.listdir", "os.scandir"):
        path = _path(args[0]) if args and args[0] is not None else os.getcwd()
        if path is not None:
            _events.append(("list", path, False))
    elif event in ("os.rename", "os.remove", "os.rmdir", "os.mkdir", "os.symlink", "os.link", "shutil.rmtree"):
        for a in args[:2]:
            path = _path(a)
            if path is not None:
                _events.append((event, path, True))


def run_one(spec: dict) -> dict:
    if spec["cli"] == "artifact":
        from artifact.cli import main
    else:
        from harness.cli import main
    out, err = io.StringIO(), io.StringIO()
    _events.clear()
    t0 = time.monotonic()
    _recording[0] = True
    signal.alarm(HANG_SECONDS)  # a blocked read (a FIFO) or an endless loop becomes a recorded hang
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(spec["argv"])
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except Hang:
                err.write(f"HANG: still running after {HANG_SECONDS} s\n")
                code = "hang"
            except BaseException:  # a traceback escaped the CLI: exactly what must never happen
                err.write(traceback.format_exc())
                code = 1
    finally:
        signal.alarm(0)
        _recording[0] = False
    return {
        "name": spec["name"], "code": code, "stdout": out.getvalue()[-4000:], "stderr": err.getvalue()[-4000:],
        "seconds": time.monotonic() - t0, "maxrss_mb": _peak_rss_mb(),
        "events": [list(e) for e in dict.fromkeys(_events)],
        "realpaths": {p: os.path.realpath(p) for _, p, _ in set(_events)},
    }


def _peak_rss_mb() -> float:
    """This process's own peak resident set. Not getrusage's ru_maxrss: Linux carries that
    across fork and exec, so under a large pytest process it reads the parent's size."""
    try:
        for line in open("/proc/self/status", encoding="ascii"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_LIMIT, ADDRESS_SPACE_LIMIT))
    signal.signal(signal.SIGALRM, _alarm)
    specs = json.loads(open(sys.argv[1], encoding="utf-8").read())
    # Everything the CLIs import up front is imported before recording starts; what they import
    # lazily (their own modules, numpy's and scipy's parts) is allowed by the test.
    import artifact.cli  # noqa: F401
    import harness.cli  # noqa: F401

    sys.addaudithook(_hook)
    report = [run_one(s) for s in specs]
    sys.__stdout__.write(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
