"""artifact.launch.imagearchive: the image config without build times (so the id is a function of the
files and settings), the base loaded from its tarball with a fixed config, and both ways of
loading a fixed config (config alone; through `docker save`) giving the same image."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from testkit import REPO

from artifact.launch import imagearchive
from artifact.launch.image import image_info

ATTRS = {
    "Architecture": "amd64", "Os": "linux",
    "Config": {"Hostname": "9925f9c62894", "Domainname": "", "User": "10001:10001", "AttachStdin": False, "Tty": False,
               "Env": ["PATH=/opt/venv/bin:/usr/bin"], "Cmd": ["--profile", "smoke"], "Image": "sha256:379f",
               "Volumes": None, "WorkingDir": "/tmp", "Entrypoint": ["/usr/local/bin/artifact-entrypoint"],
               "OnBuild": None, "Labels": {"org.opencontainers.image.version": "0.1.0"}},
    "ContainerConfig": {"Hostname": "9925f9c62894"}, "Container": "9925f9c6", "Created": "2026-11-29T07:45:19.41Z",
    "DockerVersion": "20.10.24", "RootFS": {"type": "layers", "Layers": ["sha256:aa", "sha256:bb", "sha256:cc"]},
}
HISTORY = [  # newest first, as the engine's history endpoint gives it
    {"Created": 1764402319, "CreatedBy": "/bin/sh -c #(nop)  CMD [\"--profile\" \"smoke\"]", "Size": 0},
    {"Created": 1764402318, "CreatedBy": "/bin/sh -c #(nop) COPY dir:2 in / ", "Size": 5_000},
    {"Created": 1764402300, "CreatedBy": "/bin/sh -c #(nop) COPY dir:1 in / ", "Size": 1_000_000},
    {"Created": 1764400000, "CreatedBy": "/bin/sh -c if ! command -v python3 ...", "Size": 0},
    {"Created": 1700000000, "CreatedBy": "", "Comment": "debootstrap bookworm minbase (b630)", "Size": 110_000_000},
]


def test_normalized_config_keeps_the_image_and_drops_the_build():
    config = imagearchive.normalized_config(ATTRS, HISTORY, 1764400000)
    assert config["config"] == {"User": "10001:10001", "Env": ["PATH=/opt/venv/bin:/usr/bin"], "Cmd": ["--profile", "smoke"],
                                "WorkingDir": "/tmp", "Entrypoint": ["/usr/local/bin/artifact-entrypoint"],
                                "Labels": {"org.opencontainers.image.version": "0.1.0"}}
    text = json.dumps(config)
    for build_only in ("9925f9c6", "379f", "20.10.24", "07:45:19"):
        assert build_only not in text
    assert not {"container", "container_config", "docker_version"} & set(config)
    assert {config["created"]} | {h["created"] for h in config["history"]} == {"2025-11-29T07:06:40Z"}
    assert [h.get("empty_layer", False) for h in config["history"]] == [False, True, False, False, True]
    assert config["history"][0]["comment"].startswith("debootstrap")
    assert config["rootfs"] == {"type": "layers", "diff_ids": ["sha256:aa", "sha256:bb", "sha256:cc"]}


def test_the_id_does_not_depend_on_when_or_where_it_was_built():
    later = {**ATTRS, "Created": "2027-01-01T00:00:00Z", "Container": "ffff", "Config": {**ATTRS["Config"], "Hostname": "ffff"}}
    history = [{**h, "Created": h["Created"] + 86400} for h in HISTORY]
    assert imagearchive.config_digest(imagearchive.normalized_config(ATTRS, HISTORY, 1)) == \
        imagearchive.config_digest(imagearchive.normalized_config(later, history, 1))
    changed = {**ATTRS, "Config": {**ATTRS["Config"], "Labels": {"org.opencontainers.image.version": "0.2.0"}}}
    assert imagearchive.config_digest(imagearchive.normalized_config(changed, HISTORY, 1)) != \
        imagearchive.config_digest(imagearchive.normalized_config(ATTRS, HISTORY, 1))


def test_a_layer_of_zero_bytes_falls_back_to_one_history_entry_per_layer():
    history = [dict(h, Size=0) if "dir:2" in h["CreatedBy"] else h for h in HISTORY]
    config = imagearchive.normalized_config(ATTRS, history, 0)
    assert len(config["history"]) == 3 and not any(h.get("empty_layer") for h in config["history"])


def test_the_base_archive_is_a_function_of_the_tarball(tmp_path):
    tarball = tmp_path / "root.tar"
    with tarfile.open(tarball, "w") as tar:
        info = tarfile.TarInfo("etc/hostname")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"box\n"))
    outs = []
    for _ in range(2):
        proc = subprocess.run([sys.executable, "-m", "artifact.launch.imagearchive", "base", str(tarball), "base:t", "1700000000",
                               "debootstrap"], capture_output=True, cwd=REPO)
        assert proc.returncode == 0, proc.stderr
        outs.append(proc.stdout)
    assert outs[0] == outs[1]
    with tarfile.open(fileobj=io.BytesIO(outs[0])) as archive:
        manifest = json.load(archive.extractfile("manifest.json"))
        config = json.load(archive.extractfile(manifest[0]["Config"]))
        layer = archive.extractfile(manifest[0]["Layers"][0]).read()
    assert manifest[0]["RepoTags"] == ["base:t"] and layer == tarball.read_bytes()
    assert config["rootfs"]["diff_ids"] == ["sha256:" + imagearchive.sha256_file(tarball)]
    assert config["created"] == "2023-11-14T22:13:20Z" and config["history"][0]["created"] == config["created"]


# --------------------------------------------------------------------------- against the engine
@pytest.mark.docker
def test_the_offline_base_loads_to_the_same_id_every_time(docker_client, offline_image):
    base_name = image_info(docker_client, offline_image).base_name
    base = docker_client.images.get(base_name)
    key = base_name.rsplit("-", 1)[1]
    cache = Path(os.environ.get("ARTIFACT_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
                 / "gpu-kernel-artifact")
    tarball = cache / "base" / f"bookworm-{key}.tar"
    if not tarball.is_file():
        pytest.skip(f"{tarball} is not on this machine (the base was loaded from elsewhere)")
    epoch = int(imagearchive.datetime.fromisoformat(base.attrs["Created"].replace("Z", "+00:00")).timestamp())
    comment = base.history()[0]["Comment"]
    buf = io.BytesIO()
    imagearchive.write_archive(buf, imagearchive.base_config(imagearchive.sha256_file(tarball), epoch, comment),
                               ["gka-test-base:again"], [(f"{imagearchive.sha256_file(tarball)}/layer.tar", tarball)])
    try:
        (again,) = docker_client.images.load(buf.getvalue())
        assert again.id == base.id
    finally:
        docker_client.images.remove("gka-test-base:again")


@pytest.mark.docker
@pytest.mark.slow
def test_loading_through_docker_save_gives_the_same_image(docker_client, offline_image):
    """The path for engines that want every layer in the archive (the containerd image store):
    the same config, so the same id as the config-only load `artifact build` did."""
    built = docker_client.images.get(f"{offline_image}-build")
    epoch = int(imagearchive.datetime.fromisoformat(
        docker_client.images.get(offline_image).attrs["Created"].replace("Z", "+00:00")).timestamp())
    notes: list[str] = []
    try:
        image_id, digest = imagearchive.load_normalized(docker_client, built.id, "gka-test:through-save", epoch,
                                                        notes.append, full=True)
        assert image_id == digest == docker_client.images.get(offline_image).id
    finally:
        docker_client.images.remove("gka-test:through-save")
