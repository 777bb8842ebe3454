"""environment: settings that were in force during the run, read back by the harness into env.json."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Optional

from artifact.claims.base import FAIL, PASS, Claim, ClaimVerdict, ParseContext
from artifact.claims.parts import CaseSelector
from artifact.results.folder import ResultSet
from artifact.yamlnode import Node

ENV_KEYS = ("tf32_off", "deterministic", "fill_off", "min_nvidia_driver", "min_cuda_driver")


@dataclass(kw_only=True)
class EnvironmentClaim(Claim):
    """Settings that were in force during the run (read back by the harness into env.json)."""

    KIND: ClassVar[str] = "environment"
    KEYS: ClassVar[tuple[str, ...]] = ("require",)
    tf32_off: Optional[bool] = None
    deterministic: Optional[bool] = None
    fill_off: Optional[bool] = None  # no NaN fill of uninitialised memory inside the timed region
    min_nvidia_driver: Optional[str] = None
    min_cuda_driver: Optional[str] = None

    @classmethod
    def parse(cls, node: Node, ctx: ParseContext, common: dict[str, Any]) -> EnvironmentClaim:
        req = node.get("require")
        req.only_keys(ENV_KEYS)
        if not req.mapping():
            raise req.error("nothing required", f"name at least one of {', '.join(ENV_KEYS)}")
        kw: dict[str, Any] = {}
        for key in ("tf32_off", "deterministic", "fill_off"):
            if req.has(key):
                kw[key] = req.get(key).boolean()
        for key in ("min_nvidia_driver", "min_cuda_driver"):
            if req.has(key):
                sub = req.get(key)
                text = str(sub.value) if isinstance(sub.value, (str, int, float)) and not isinstance(sub.value, bool) else ""
                if not _version(text):
                    raise sub.error(f"expected a version like \"535.104\", got {sub.value!r}", "quote it")
                kw[key] = text
        return cls(**kw, **common)

    def own_entry(self) -> dict[str, Any]:
        return {"require": {k: getattr(self, k) for k in ENV_KEYS if getattr(self, k) is not None}}

    def selectors(self) -> list[CaseSelector]:
        return []

    def summary(self) -> str:
        parts = []
        if self.tf32_off is not None:
            parts.append("TF32 " + ("off" if self.tf32_off else "allowed"))
        if self.deterministic is not None:
            parts.append("deterministic algorithms " + ("on" if self.deterministic else "off"))
        if self.fill_off is not None:
            parts.append("no NaN fill of uninitialised memory while timing" if self.fill_off else "NaN fill on")
        if self.min_nvidia_driver:
            parts.append(f"NVIDIA driver >= {self.min_nvidia_driver}")
        if self.min_cuda_driver:
            parts.append(f"driver CUDA >= {self.min_cuda_driver}")
        return ", ".join(parts)

    def _judge(self, results: ResultSet) -> ClaimVerdict:
        env = results.env
        lock = env.lock or {}
        checks: list[tuple[bool, str]] = []
        if self.tf32_off is not None:
            vals = (lock.get("matmul_allow_tf32"), lock.get("cudnn_allow_tf32"))
            if None in vals:
                checks.append((False, "TF32 settings not recorded in env.json lock"))
            else:
                off = not any(vals)
                checks.append((off == self.tf32_off, f"TF32 matmul={vals[0]} cudnn={vals[1]}"))
        if self.deterministic is not None:
            vals = (lock.get("deterministic_algorithms"), lock.get("cudnn_deterministic"))
            if None in vals:
                checks.append((False, "determinism settings not recorded in env.json lock"))
            else:
                on = all(vals)
                checks.append((on == self.deterministic, f"deterministic_algorithms={vals[0]} cudnn_deterministic={vals[1]}"))
        if self.fill_off is not None:
            checks.append(self._fill_check(results, lock))
        for key, have, label in (("min_nvidia_driver", env.nvidia_driver_version, "NVIDIA driver"),
                                 ("min_cuda_driver", env.cuda_driver_version, "driver CUDA")):
            need = getattr(self, key)
            if need is None:
                continue
            if have is None:
                field_name = "nvidia_driver_version" if key == "min_nvidia_driver" else "cuda_driver_version"
                checks.append((False, f"{label} not recorded ({env.unavailable.get(field_name, 'no reason given')})"))
            else:
                checks.append((_version(have) >= _version(need), f"{label} {have} (need >= {need})"))
        relevant = ("matmul_allow_tf32", "cudnn_allow_tf32", "deterministic_algorithms", "cublas_workspace_config",
                    "fill_uninitialized_memory")
        failures = [f"{k}: {v}" for k, v in (env.lock_failures or {}).items() if k in relevant]
        for f in failures:
            checks.append((False, f"lock failure {f}"))
        bad = [text for ok, text in checks if not ok]
        good = [text for ok, text in checks if ok]
        why = ("not met: " + "; ".join(bad) + (f" (met: {'; '.join(good)})" if good else "")) if bad else "met: " + "; ".join(good)
        return self.verdict(FAIL if bad else PASS, why, rule="point", tolerance="exact", details=[t for _, t in checks])

    def _fill_check(self, results: ResultSet, lock: dict[str, Any]) -> tuple[bool, str]:
        """The fill must be off where the timing happened: env.json's lock read-back, and the value
        each case read in the timing process right before sampling (CaseResult.timing)."""
        locked = lock.get("fill_uninitialized_memory")
        if locked is None:
            return False, ("fill_uninitialized_memory not recorded in env.json lock (a harness from before issue 8, whose "
                           "timings include a NaN fill kernel)")
        per_case = [c.timing.fill_uninitialized_memory for c in results.cases if c.status == "ok" and c.timing is not None]
        on = sum(v is True for v in per_case)
        unknown = sum(v is None for v in per_case)
        want_off = bool(self.fill_off)
        ok = (not locked) == want_off and (on == 0 if want_off else True) and unknown == 0
        text = (f"fill_uninitialized_memory={locked} in env.json; in the timing process: {len(per_case) - on - unknown} "
                f"case(s) off, {on} on" + (f", {unknown} not recorded" if unknown else ""))
        return ok, text


def _version(text: str) -> tuple[int, ...]:
    parts = str(text).strip().split(".")
    if not parts or not all(p.isdigit() for p in parts):
        return ()
    return tuple(int(p) for p in parts)

