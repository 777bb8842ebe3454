"""Shards: every case in exactly one shard, the same split wherever it is computed, balanced by
estimated work."""

import pytest

from harness import plan as planmod
from harness import shard
from harness.errors import HarnessError


def full_plan():
    return planmod.from_yaml("harness/plans/h200-artifact.yaml", "cuda").cases


@pytest.mark.parametrize("n", [1, 2, 3, 4, 8])
def test_every_case_lands_in_exactly_one_shard(n):
    cases = full_plan()
    parts = shard.assign(cases, n)
    ids = [c.case_id for p in parts for c in p]
    assert sorted(ids) == sorted(c.case_id for c in cases) and len(ids) == len(set(ids))
    # each shard keeps the plan's order
    pos = {c.case_id: i for i, c in enumerate(cases)}
    assert all([pos[c.case_id] for c in p] == sorted(pos[c.case_id] for c in p) for p in parts)


def test_the_split_is_the_same_wherever_it_is_computed():
    a = [[c.case_id for c in p] for p in shard.assign(full_plan(), 4)]
    b = [[c.case_id for c in p] for p in shard.assign(list(reversed(full_plan())), 4)]
    assert sorted(map(sorted, a)) == sorted(map(sorted, b))


def test_shards_are_balanced_by_estimated_work():
    cases = full_plan()
    loads = [sum(shard.cost(c) for c in p) for p in shard.assign(cases, 4)]
    biggest = max(shard.cost(c) for c in cases)
    # LPT: no shard exceeds the mean by more than the largest single case
    assert max(loads) - sum(loads) / 4 <= biggest


@pytest.mark.parametrize("text", ["2/2", "x", "1/0", "-1/3", "1 / "])
def test_bad_shard_text_is_refused(text):
    with pytest.raises(HarnessError, match="--shard"):
        shard.parse(text)


def test_an_empty_shard_is_refused():
    cases = full_plan()[:2]
    with pytest.raises(HarnessError, match="has no case"):
        shard.select(cases, 2, 3)


def test_the_split_balances_the_measured_time_of_the_h200_plan():
    """The cost model against what the cases took: per-case seconds (phases_s) of three committed
    H200 runs of the plan; split in 2 or 4, no shard takes more than 10% / 20% over the mean."""
    import statistics
    from pathlib import Path

    from harness import plan as planmod
    from harness import shard
    from harness.records import CaseResult, load_record

    repo = Path(__file__).resolve().parents[2]
    plan = planmod.from_yaml(repo / "harness" / "plans" / "h200-artifact.yaml", "cuda")
    secs: dict[str, list[float]] = {}
    for run in ("machine-B/run-B1", "machine-D/run-D1", "machine-E/run-E1"):
        for f in (repo / "bench" / "h200" / run / "cases").glob("*.json"):
            r = load_record(f, CaseResult)
            secs.setdefault(r.case.case_id, []).append(sum(r.phases_s.values()))
    assert {c.case_id for c in plan.cases} <= set(secs)
    for n, slack in ((2, 1.10), (4, 1.20)):
        took = [sum(statistics.median(secs[c.case_id]) for c in part) for part in shard.assign(plan.cases, n)]
        assert max(took) <= slack * sum(took) / n, (n, took)
