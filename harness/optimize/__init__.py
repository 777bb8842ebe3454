"""`harness optimize`: can the bundled Triton kernel beat every SDPA backend at one fixed shape?

The loop, at one shape and within a time budget:

1. Baseline: every SDPA backend and the default dispatch, measured (correctness first); the
   fastest that passes is the baseline (baseline.py).
2. Search: every config of the kernel's search space (search.py; on a GPU compiled first in
   parallel, precompile.py) passes the float64 correctness gate on fresh random inputs of its
   own, then gets a quick measurement (rung 0). Successive halving keeps the fastest third of
   each rung and measures them again, longer, on fresh inputs, until one is left or the budget
   is spent (halving.py).
3. Comparison: the winner and the baseline are each measured once more with the full timing,
   back to back. Both were chosen as the fastest of several noisy measurements, so comparing the
   selection measurements would flatter them (the winner's curse); the fresh pair does not.
   harness.compare turns the two sample sets into the ratio of medians with its bootstrap CI,
   Hedges' g, Cliff's delta, the Mann-Whitney p-value and a verdict (run.py).

Outputs in DIR (records.py names them): env.json, cases/ (the two final measurements, readable by
`artifact check`), baseline.json, search.json, comparison.json, tuned_config.json, summary.md
(summary.py, written from the records only), manifest.json. The command itself is in harness/cli.py;
the run's settings and their checks in settings.py; how long each stage measures in plans.py.

Torch is imported only where kernels run, so the records and the search space load without it.
"""
