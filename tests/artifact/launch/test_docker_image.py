"""The image built offline from this checkout: its labels and provenance, and what a container of
it can and cannot do, observed from inside it with exactly the launcher's settings."""

from __future__ import annotations

import json
import os
import re
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest
from testkit import REPO

from artifact import __version__
from artifact.launch import runtime_docker
from artifact.launch.gitinfo import git_info
from artifact.launch.image import image_info
from harness.storage import sha256_file

pytestmark = pytest.mark.docker


PROBE = r"""
import errno, json, os, resource, shutil, socket, importlib.util
facts = {"uid": os.getuid(), "gid": os.getgid(), "ifaces": sorted(os.listdir("/sys/class/net"))}
try:
    socket.create_connection(("1.1.1.1", 53), timeout=3).close()
    facts["connect"] = "connected"
except OSError as e:
    facts["connect"] = errno.errorcode.get(e.errno, str(e))
try:
    socket.getaddrinfo("pypi.org", 443)
    facts["dns"] = "resolved"
except OSError as e:
    facts["dns"] = "failed"
for path in ("/opt/venv/probe", "/tmp/probe"):
    try:
        open(path, "w").close()
        facts[path] = "written"
    except OSError as e:
        facts[path] = errno.errorcode.get(e.errno, str(e))
status = dict(l.split(":", 1) for l in open("/proc/self/status").read().splitlines() if ":" in l)
facts["cap_eff"] = status["CapEff"].strip()
facts["no_new_privs"] = status["NoNewPrivs"].strip()
st = os.statvfs("/dev/shm")
facts["shm_bytes"] = st.f_blocks * st.f_frsize
facts["stack"] = resource.getrlimit(resource.RLIMIT_STACK)
facts["pip"] = importlib.util.find_spec("pip") is not None
facts["compilers"] = [c for c in ("gcc", "cc", "g++", "clang", "nvcc") if shutil.which(c)]
facts["build_dir"] = os.path.exists("/build")
facts["wheels"] = [os.path.join(d, f) for d, _, fs in os.walk("/opt") for f in fs if f.endswith(".whl")]
import torch, harness.cli
facts["torch"] = torch.__version__
facts["pid1"] = open("/proc/1/comm").read().strip()
print("FACTS " + json.dumps(facts))
"""


@pytest.fixture(scope="module")
def inside(docker_client, offline_image, tmp_path_factory):
    """Facts printed by a probe run through the launcher's own container settings."""
    out = tmp_path_factory.mktemp("probe")
    plan = runtime_docker.ContainerPlan(image=offline_image, command=["python3", "-c", PROBE], out=out,
                                        user=runtime_docker.container_user())
    lines: list[str] = []
    outcome = runtime_docker.run_container(docker_client, plan, timeout_s=120, log=lines.append)
    assert outcome.exit_code == 0, lines
    facts = [l for l in lines if l.startswith("FACTS ")]
    assert facts, lines
    assert not docker_client.containers.list(all=True, filters={"label": f"{runtime_docker.LABEL_RUN}={plan.run_id}"})
    return json.loads(facts[-1][len("FACTS "):])


def test_runs_as_non_root(inside):
    assert inside["uid"] != 0 and inside["gid"] != 0
    expected = runtime_docker.IMAGE_UID if os.getuid() == 0 else os.getuid()
    assert inside["uid"] == expected


def test_has_no_network(inside):
    assert inside["ifaces"] == ["lo"]
    assert inside["connect"] in ("ENETUNREACH", "EHOSTUNREACH", "EAI_NONAME") and inside["dns"] == "failed"


def test_root_filesystem_is_read_only_with_a_writable_tmp(inside):
    assert inside["/opt/venv/probe"] == "EROFS"
    assert inside["/tmp/probe"] == "written"


def test_no_capabilities_no_new_privileges_and_an_init(inside):
    assert int(inside["cap_eff"], 16) == 0
    assert inside["no_new_privs"] == "1"
    assert inside["pid1"] in ("docker-init", "tini")


def test_shm_and_stack_limits(inside):
    assert inside["shm_bytes"] == 1 << 30
    # A CPU container asks for none of the GPU ulimits (memlock, a 64 MiB stack: NVIDIA's advice
    # for CUDA): the engine's default stays, and no run warns that a limit could not be raised.
    assert inside["stack"] != [67108864, 67108864]


def test_image_is_lean_and_pinned(inside):
    assert inside["pip"] is False and inside["compilers"] == [] and inside["build_dir"] is False
    assert inside["wheels"] == []
    lock = (REPO / "docker" / "requirements-cpu.lock").read_text()
    torch_pin = re.search(r"^torch==(\S+)", lock, flags=re.MULTILINE).group(1)
    assert inside["torch"] == torch_pin


def test_labels_record_version_revision_base_and_time(docker_client, offline_image):
    info = image_info(docker_client, offline_image)
    assert info.version == __version__ and info.torch_variant == "cpu" and info.cuda_version == "none"
    git = git_info(REPO)
    if git.commit is None:
        assert info.revision == "unknown"
    else:
        # The commit the image was built from: HEAD, or an ancestor if a commit landed since the build.
        m = re.fullmatch(r"([0-9a-f]{40})(-dirty)?", info.revision)
        assert m, info.revision
        ancestor = subprocess.run(["git", "-C", str(REPO), "merge-base", "--is-ancestor", m.group(1), "HEAD"])
        assert ancestor.returncode == 0, f"{info.revision} is not in this checkout's history"
        if m.group(1) == git.commit:
            assert bool(m.group(2)) == git.dirty
    # The offline base is the debootstrapped image; its id is the recorded base digest.
    assert info.base_name.startswith("gpu-kernel-artifact-base:bookworm-")
    base = docker_client.images.get(info.base_name)
    assert base.id == info.base_digest
    # ...and its single layer is the debootstrapped tarball, named by its sha256.
    (layer,) = base.attrs["RootFS"]["Layers"]
    assert info.base_rootfs == layer
    key = info.base_name.rsplit("-", 1)[1]
    if "ARTIFACT_CACHE" in os.environ:
        cache = Path(os.environ["ARTIFACT_CACHE"])
    else:
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gpu-kernel-artifact"
    tarball = cache / "base" / f"bookworm-{key}.tar"
    if tarball.exists():
        assert layer == "sha256:" + sha256_file(tarball)
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH") or git.commit_time or 0)
    assert info.created == datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    config = docker_client.images.get(offline_image).attrs["Config"]
    assert config["User"] == "10001:10001" and config["Entrypoint"] == ["/usr/local/bin/artifact-entrypoint"]
    # Budget, not a measurement (bench/launcher_overhead.json has that): torch CPU is ~0.75 GB of it.
    assert info.size_bytes < 1.6e9


# --------------------------------------------------------------------------- rebuildable bit for bit
FILES_PROBE = r"""
import json, os
newest, pyc_flags, n = 0, set(), 0
for top in ("/opt", "/usr/local/bin", "/results", "/etc/passwd", "/etc/group"):
    walk = os.walk(top) if os.path.isdir(top) else [(os.path.dirname(top), [], [os.path.basename(top)])]
    for d, dirs, files in walk:
        for name in dirs + files:
            path = os.path.join(d, name)
            newest, n = max(newest, os.lstat(path).st_mtime), n + 1
            if name.endswith(".pyc"):
                with open(path, "rb") as fh:
                    pyc_flags.add(int.from_bytes(fh.read(8)[4:8], "little"))
logs = [os.path.join(d, f) for d, _, fs in os.walk("/var/log") for f in fs]
print("FILES " + json.dumps({"newest": newest, "n": n, "pyc_flags": sorted(pyc_flags), "logs": logs}))
"""


def test_files_carry_the_source_date_and_bytecode_is_hash_based(docker_client, offline_image):
    code, output = runtime_docker.run_in_image(docker_client, offline_image, ["python3", "-c", FILES_PROBE], None)
    assert code == 0, output
    facts = json.loads(next(l for l in output.splitlines() if l.startswith("FILES "))[len("FILES "):])
    created = datetime.strptime(image_info(docker_client, offline_image).created, "%Y-%m-%dT%H:%M:%SZ")
    assert facts["n"] > 1000 and facts["newest"] <= created.replace(tzinfo=timezone.utc).timestamp()
    assert facts["pyc_flags"] == [3]  # PEP 552 checked-hash .pyc: no build time inside
    assert facts["logs"] == []


def test_two_no_cache_builds_give_the_same_image_id(docker_client, offline_image, artifact_cli):
    """Same base tarball, same wheelhouse, same commit: the same image, to the byte (its id is the
    sha256 of a config naming every layer's sha256)."""
    ids = []
    for _ in range(2):
        proc = artifact_cli("build", "--offline", "--no-cache", "--quiet", timeout=1800)
        assert proc.returncode == 0, proc.stderr
        ids.append(re.search(r" = (sha256:[0-9a-f]{64}) ", proc.stdout).group(1))
    assert ids[0] == ids[1] == docker_client.images.get(offline_image).id
    # Each --no-cache build left the previous one's stages behind, untagged: reclaim their space.
    assert artifact_cli("gc", "--images", timeout=600).returncode == 0
