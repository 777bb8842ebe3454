"""Family-scoped claims (ratios, rankings, scaling, efficiency offered to the compute capability)
kept there only if they hold on runs of other GPU models of that family."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from artifact.derive.options import DeriveOptions
from artifact.reference import Peak, load_reference
from artifact.results.folder import ResultSet, load_results


def _evidence_results(folder: Path, peaks: list[Peak]) -> ResultSet:
    from harness.records import Ceiling, CeilingsRecord

    rs = load_results(folder)[0]
    if rs.ceilings is None and peaks:
        # Older runs measured no ceilings in the run; the peaks measured on that hardware stand in.
        rs.ceilings = CeilingsRecord(created_at="", device="cuda", gpu_name=rs.env.gpu.name if rs.env.gpu else None,
                                     ceilings=[Ceiling(metric={"tflops": "matmul_tflops", "gbps": "copy_gbps"}[p.metric],
                                                       value=p.value, unit=p.unit, dtype=p.dtype, what=p.source,
                                                       median_ms=0.0, ci_low_ms=0.0, ci_high_ms=0.0, work=0.0, n_samples=0)
                                               for p in peaks])
    return rs


def narrow_family_claims(doc: dict[str, Any], opts: DeriveOptions) -> None:
    """Keep a claim offered to the compute-capability family only where the evidence bears it
    out: it must PASS on every given run of another GPU model of that family. Otherwise (it
    fails there, or no evidence run can judge it) it is narrowed to the GPU model it was measured
    on, and its tolerance's derivation says why."""
    family = [c for c in doc["claims"] if isinstance(c.get("scope"), dict) and c["scope"].get("kind") == "compute_capability"]
    if not family:
        return
    evidence = [_evidence_results(Path(f), opts.evidence_peaks) for f in opts.family_evidence]
    gpu = doc["hardware"].get("gpu_name")
    cc = family[0]["scope"]["min"]
    evidence = [e for e in evidence if e.env.gpu is not None and e.env.gpu.compute_capability == cc and e.env.gpu.name != gpu]
    verdicts: dict[str, list[tuple[str, bool]]] = {}
    if evidence:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "family.yaml"
            path.write_text(yaml.safe_dump({**doc, "claims": family, "not_claimed": []}, sort_keys=False), encoding="utf-8")
            ref = load_reference(path)
        for claim in ref.claims:
            verdicts[claim.id] = [(v.status, v.missing) for v in (claim.judge(e) for e in evidence)]
    models = sorted({e.env.gpu.name for e in evidence if e.env.gpu and e.env.gpu.name})
    for c in family:
        judged = [st for st, missing in verdicts.get(c["id"], []) if not missing]
        note_to = c.setdefault("tolerance", {}).setdefault("derivation", {}) if "tolerance" in c else c
        if judged and len(judged) == len(verdicts[c["id"]]) and all(s == "PASS" for s in judged):
            note = f"held on {len(judged)} run(s) of {', '.join(models)}: scoped to compute capability {cc}"
        else:
            c["scope"] = {"kind": "gpu_model", "gpu_name": gpu}
            if not evidence:
                note = "no run of another GPU model of this family to check it on: kept to the GPU model"
            elif not judged:
                note = f"the runs of {', '.join(models)} do not have its cases, so nothing bears it out: kept to the GPU model"
            else:
                note = (f"{sum(s == 'PASS' for s in judged)} of {len(verdicts[c['id']])} run(s) of {', '.join(models)} "
                        "passed it: kept to the GPU model")
        if note_to is c:
            c["description"] = (c.get("description", "") + ("; " if c.get("description") else "") + "scope: " + note)
        else:
            note_to["scope_evidence"] = note
