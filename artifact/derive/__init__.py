"""Derive a reference file from several independent result folders of the same hardware.

Tolerances come from the measured run-to-run spread, never from a guess, and each claim records
how its tolerance was derived:

    relative tolerance = max(k * max_rel_dev + max_ci_rel_halfwidth, floor)

where max_rel_dev is the largest |run estimate / reference - 1| over the runs (the reference is
the median of the run estimates) and max_ci_rel_halfwidth the widest CI any run had (with rule
"equivalence" the whole CI of a rerun must fit inside the band, so the band must be wider than a
CI). Exponents use the same formula on an absolute scale. Cases that are not produced ok by every
run (absent, skipped, failed, or invalid: timed calls not shown to do the work), spreads too wide
to claim anything, rankings that are not separated in every run, and repeats that were not
bitwise-identical in every run are written under `not_claimed` with the reason, so the file says
what was left out as well as what is claimed.

The public door: DeriveOptions, derive(), peaks_from(), write_reference(); the modules behind it:
options, runs, base (shared state and the tolerance rule), timed and untimed (one method per claim
kind, as artifact/claims/ has one module per kind), family, document.
"""

from artifact.derive.document import derive, peaks_from, write_reference
from artifact.derive.family import narrow_family_claims
from artifact.derive.options import DeriveOptions
from artifact.derive.runs import read_runs

__all__ = ["DeriveOptions", "derive", "narrow_family_claims", "peaks_from", "read_runs", "write_reference"]
