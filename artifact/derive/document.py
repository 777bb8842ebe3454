"""The reference document: every claim kind derived from the runs, narrowed to the family where
the evidence bears it out, with its provenance; read peaks from, and write, a reference file."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import yaml

from artifact import __version__
from artifact.derive.family import narrow_family_claims
from artifact.derive.options import DeriveOptions
from artifact.derive.runs import machine_id, read_runs
from artifact.derive.timed import TimedClaims
from artifact.derive.untimed import UntimedClaims
from artifact.errors import ArtifactError
from artifact.reference import REFERENCE_VERSION, Peak, load_reference, parse_hardware
from artifact.results.folder import ResultSet
from artifact.yamlnode import load_yaml
from harness import storage


class Builder(TimedClaims, UntimedClaims):
    """Every claim kind, and the document around them."""

    # -- the file
    def options(self) -> dict[str, Any]:
        o = self.opts
        out: dict[str, Any] = {
            "ratio": [f"{a}/{b}" for a, b in o.ratio_pairs], "max_rel": o.max_rel, "min_runs": o.min_runs,
            "min_machines": o.min_machines, "ranking_min_gap": o.ranking_min_gap, "ranking_rule": o.ranking_rule,
            "correctness_factor": o.correctness_factor, "memory_margin": o.memory_margin,
        }
        if o.portable_only:
            out["portable_only"] = True
        if o.retire_timing:
            out["retire_timing"] = o.retire_timing
        if o.family_evidence:
            out["family_evidence"] = [str(f) for f in o.family_evidence]
        if o.evidence_peaks:
            out["evidence_peaks"] = [f"{p.metric} {p.value:g} {p.unit}" for p in o.evidence_peaks]
        return out

    def hardware(self) -> dict[str, Any]:
        env = self.runs[0].env
        hw: dict[str, Any] = {"device": env.device}
        if self.cuda and env.gpu:
            hw["gpu_name"] = self.gpu_name
            hw["compute_capability"] = env.gpu.compute_capability
            drivers = sorted({r.env.nvidia_driver_version for r in self.runs if r.env.nvidia_driver_version})
            hw["nvidia_driver_version"] = ", ".join(drivers) if drivers else None
            limits = [r.env.gpu_state_before.power_limit_w for r in self.runs
                      if r.env.gpu_state_before is not None and r.env.gpu_state_before.power_limit_w]
            if limits:
                hw["power_limit_w"] = min(limits)
        cpus = sorted({str((r.env.host or {}).get("cpu_model")) for r in self.runs})
        hw["cpu_model"] = ", ".join(cpus)
        if self.opts.peaks:
            hw["peaks"] = [{k: v for k, v in vars(p).items() if v is not None} for p in self.opts.peaks]
        return hw

    def document(self, folders: list[Path]) -> dict[str, Any]:
        env = self.runs[0].env
        return {
            "schema_version": REFERENCE_VERSION,
            "kind": "reference",
            "name": self.opts.name,
            "description": self.opts.description or f"derived from {self.n_runs} runs on {self.n_machines} machine(s)",
            "hardware": self.hardware(),
            **({"run": {k: v for k, v in vars(self.opts.run).items() if v is not None}} if self.opts.run else {}),
            **({"timing": self.timing} if self.timing and not self.opts.retire_timing else {}),
            "environment": {
                "software": dict(env.software),
                "cuda_runtime_version": env.cuda_runtime_version,
                "cuda_driver_version": env.cuda_driver_version,
                "torch_cuda_build": env.torch_cuda_build,
                "cudnn_version": env.cudnn_version,
                "in_container": env.in_container,
            },
            "derived_from": {
                "tool": f"artifact derive-reference {__version__}",
                "created_at": storage.utc_now(),
                "rule": ("relative: max(exp(k * max_log_dev + max_log_ci_half) - 1, floor); exponents: max(k * max_abs_dev + "
                         "max_ci_half, floor); dev = a run's estimate against the median of the runs, ci_half = the far side of "
                         "a run's CI from its estimate"),
                "k": self.opts.k, "floor_rel": self.opts.floor_rel, "floor_abs": self.opts.floor_abs,
                "runs": [
                    {"folder": str(f), "created_at": r.env.created_at, "machine": machine_id(r),
                     "nvidia_driver_version": r.env.nvidia_driver_version, "harness_version": r.env.harness_version,
                     "cases": len(r.cases)}
                    for f, r in zip(folders, self.runs)
                ],
                "machines": self.n_machines,
                # Everything else the derivation was given, so the file can be regenerated from it.
                "options": self.options(),
            },
            "defaults": dict(self.defaults),
            "claims": self.claims,
            "not_claimed": self.not_claimed,
        }


def derive(folders: list[Path], opts: DeriveOptions, loaded: Optional[list[ResultSet]] = None) -> dict[str, Any]:
    """The reference document (a mapping ready for YAML) derived from the runs in `folders`
    (`loaded`: the same runs already read by load_results, e.g. by a study deriving many times)."""
    runs = read_runs(folders, opts, loaded)
    b = Builder(runs, opts)
    if opts.peaks and opts.peaks_gpu is not None and opts.peaks_gpu != b.gpu_name:
        raise ArtifactError(f"the peaks given were measured on {opts.peaks_gpu}, but the runs are on {b.gpu_name or 'the CPU'}; "
                            "give --peaks-from a file for this hardware")
    if opts.portable_only:
        b.not_claimed.append({"what": "absolute, ratio, scaling and memory claims",
                              "why": "a portable-only reference (--portable-only): times and peaks depend on the machine"})
    elif opts.retire_timing:
        b.not_claimed.append({"what": "absolute, ratio, ranking, scaling and efficiency claims", "why": opts.retire_timing})
        b.memory()
    else:
        b.absolute()
        b.ratios()
        b.scaling()
        b.efficiency()
        b.memory()
    if not opts.retire_timing:
        b.rankings()
    b.correctness()
    b.determinism()
    b.environment()
    if not b.claims:
        first = b.not_claimed[0] if b.not_claimed else {"what": "-", "why": "no cases"}
        raise ArtifactError(f"no claim could be derived from these runs ({len(b.not_claimed)} left out; first: "
                            f"{first['what']}: {first['why']})")
    doc = b.document(folders)
    if b.cuda:
        narrow_family_claims(doc, opts)
    return doc


def peaks_from(path: Path) -> tuple[Optional[str], list[Peak]]:
    """(GPU model, measured peaks) from the hardware section of a reference or peaks file."""
    root, _ = load_yaml(path)
    hw = root.get("hardware")
    parsed = parse_hardware(hw)
    return parsed.gpu_name, parsed.peaks


_HEADER = """\
# Reference tolerance file, generated by `artifact derive-reference` from the runs listed under
# derived_from. Regenerate it rather than editing numbers by hand; each tolerance records how it
# was derived. hardware.peaks are measured figures carried over from the previous file.
"""


def write_reference(doc: dict[str, Any], out: Path) -> None:
    """Validate the document by reading it back as a reference, then write it atomically."""
    text = _HEADER + yaml.safe_dump(doc, sort_keys=False, default_flow_style=None, width=120, allow_unicode=True)
    if out.is_dir():
        raise ArtifactError(f"{out}: is a folder; give the reference file to write, e.g. {out / 'name.yaml'}")
    tmp = out.with_name(f".{out.name}.check")
    try:
        tmp.parent.mkdir(parents=True, exist_ok=True)
        try:
            tmp.write_text(text, encoding="utf-8")
            load_reference(tmp)  # the derive tool never writes a file that check would refuse
        finally:
            tmp.unlink(missing_ok=True)
        storage.atomic_write_text(out, text)
    except OSError as exc:
        raise ArtifactError(f"{out}: cannot write the reference file ({exc.strerror or exc}); give a writable path to --out") from None
