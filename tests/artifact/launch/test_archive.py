"""`artifact export` then `artifact build --from-archive`, against real engines: the archive
round-trips into an empty engine (a private dockerd: nothing there to reuse) as the same image,
and a damaged archive or a record that does not match it is refused with one line, before the
engine sees it."""

from __future__ import annotations

import json
import subprocess

import pytest

from artifact.launch import archive
from artifact.launch.imagearchive import sha256_file

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def _one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    return errors[0]


@pytest.fixture(scope="module")
def exported_cpu(docker_client, offline_image, tmp_path_factory, artifact_cli):
    path = tmp_path_factory.mktemp("export") / "image.tar.gz"
    proc = artifact_cli("export", "--image", offline_image, "--out", str(path), "--level", "1", "--quiet", timeout=900)
    assert proc.returncode == 0, proc.stderr
    assert f"exported {offline_image} = " in proc.stdout
    return path


def test_export_writes_the_archive_its_digest_and_its_labels(docker_client, offline_image, exported_cpu):
    record = archive.read_record(exported_cpu)
    image = docker_client.images.get(offline_image)
    assert record.image_id == image.id and record.labels == image.labels and record.image_ref == offline_image
    assert record.sha256 == sha256_file(exported_cpu) and record.size_bytes == exported_cpu.stat().st_size
    sums = (exported_cpu.parent / f"{exported_cpu.name}.sha256").read_text()
    assert sums == f"{record.sha256}  {exported_cpu.name}\n"  # `sha256sum -c` reads it
    assert subprocess.run(["sha256sum", "-c", sums.split()[-1] + ".sha256"], cwd=exported_cpu.parent,
                          capture_output=True).returncode == 0


def test_the_archive_loads_into_an_empty_engine_as_the_same_image(own_daemon, exported_cpu, artifact_cli):
    proc = artifact_cli("build", "--from-archive", str(exported_cpu), env=own_daemon["env"], timeout=900)
    assert proc.returncode == 0, proc.stderr
    record = archive.read_record(exported_cpu)
    assert f"loaded {record.image_ref} = {record.image_id}" in proc.stdout
    import docker

    client = docker.DockerClient(base_url=own_daemon["env"]["DOCKER_HOST"])
    try:
        image = client.images.get(record.image_ref)
        assert image.id == record.image_id and image.labels == record.labels
        out = client.containers.run(record.image_ref, ["python3", "-c", "import torch, harness.cli; print(torch.__version__)"],
                                    network_mode="none", remove=True)
        assert out.decode().strip() == "2.13.0+cpu"
    finally:
        client.close()


def test_a_damaged_archive_is_refused_before_loading(exported_cpu, artifact_cli, tmp_path):
    bad = tmp_path / exported_cpu.name
    data = bytearray(exported_cpu.read_bytes())
    data[len(data) // 2] ^= 0x01
    bad.write_bytes(bytes(data))
    (tmp_path / f"{bad.name}.json").write_text(archive.record_path(exported_cpu).read_text())
    proc = artifact_cli("build", "--from-archive", str(bad), timeout=300)
    assert proc.returncode == 2
    line = _one_error_line(proc)
    assert f"{bad}: sha256 " in line and "is not the recorded" in line and "damaged or was altered" in line
    assert "loading" not in proc.stderr


def test_a_record_that_does_not_match_the_archive_is_refused(exported_cpu, artifact_cli, tmp_path):
    bad = tmp_path / exported_cpu.name
    bad.symlink_to(exported_cpu)
    record = json.loads(archive.record_path(exported_cpu).read_text())
    record["labels"]["org.gpu-kernel-artifact.torch-variant"] = "cuda"
    (tmp_path / f"{bad.name}.json").write_text(json.dumps(record))
    proc = artifact_cli("build", "--from-archive", str(bad), timeout=300)
    assert proc.returncode == 2
    assert "image labels differ from the record (org.gpu-kernel-artifact.torch-variant)" in _one_error_line(proc)


@pytest.mark.parametrize("engine", ["the suite's", "none answering"])
def test_an_archive_without_its_record_is_refused(tmp_path, artifact_cli, engine):
    # Named for what it is whether or not an engine answers: the archive is checked first.
    lone = tmp_path / "image.tar.gz"
    lone.write_bytes(b"\x1f\x8b")
    env = {"DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"} if engine == "none answering" else None
    proc = artifact_cli("build", "--from-archive", str(lone), env=env, timeout=120)
    assert proc.returncode == 2
    assert "image.tar.gz.json is missing" in _one_error_line(proc)
