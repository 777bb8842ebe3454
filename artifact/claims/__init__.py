"""Claim kinds as data, and the judge of each: a results folder in, a ClaimVerdict out (torch-free).

One module per kind or family; each kind parses its entry of a reference file (`parse`), writes
it back for derive-reference (`entry`), and judges one results folder (`judge`):
    base.py         Claim, ClaimVerdict, the judging rules every kind follows
    parts.py        Scope, Tolerance, CaseSelector, TimingSpec: the fields kinds share
    absolute.py     absolute          a case's time or throughput
    ratio.py        ratio, ranking    backends at one shape, by the CI of their time ratio
    scaling.py      scaling           the exponent of time ~ S^p
    efficiency.py   efficiency        a share of the card's own measured ceiling
    memory.py       memory            a peak bound, or the exponent of peak ~ S^p
    outputs.py      correctness, determinism
    environment.py  environment       settings in force during the run
Imports go one way: artifact.reference -> artifact.claims -> parts -> artifact.yamlnode.
"""

from __future__ import annotations

from artifact.claims.absolute import ABSOLUTE_METRICS, AbsoluteClaim
from artifact.claims.base import COMMON_KEYS, FAIL, PASS, SKIP, Claim, ClaimVerdict, ParseContext, common_fields
from artifact.claims.efficiency import CEILING_METRICS, EfficiencyClaim
from artifact.claims.environment import EnvironmentClaim
from artifact.claims.memory import MemoryBoundClaim, MemoryClaim, MemoryGrowthClaim
from artifact.claims.outputs import CorrectnessClaim, DeterminismClaim
from artifact.claims.ratio import RANKING_RULES, RankingClaim, RatioClaim
from artifact.claims.scaling import ScalingClaim
from artifact.yamlnode import Node

# The kinds a reference file may name, each with the class that parses it (memory's parser
# returns a bound or a growth claim).
CLAIM_KINDS: dict[str, type[Claim]] = {
    cls.KIND: cls
    for cls in (AbsoluteClaim, RatioClaim, RankingClaim, ScalingClaim, EfficiencyClaim, CorrectnessClaim, MemoryClaim,
                DeterminismClaim, EnvironmentClaim)
}


def parse_claim(node: Node, ctx: ParseContext) -> Claim:
    node.mapping()
    kind = node.get("kind").choice(tuple(CLAIM_KINDS))
    cls = CLAIM_KINDS[kind]
    node.only_keys(COMMON_KEYS + cls.KEYS)
    claim = cls.parse(node, ctx, common_fields(node))
    if cls.TIMED:
        claim.timing_spec = ctx.timing
    return claim


__all__ = [
    "ABSOLUTE_METRICS", "CEILING_METRICS", "CLAIM_KINDS", "FAIL", "PASS", "RANKING_RULES", "SKIP", "AbsoluteClaim", "Claim",
    "ClaimVerdict", "CorrectnessClaim", "DeterminismClaim", "EfficiencyClaim", "EnvironmentClaim", "MemoryBoundClaim",
    "MemoryClaim", "MemoryGrowthClaim", "ParseContext", "RankingClaim", "RatioClaim", "ScalingClaim", "parse_claim",
]
