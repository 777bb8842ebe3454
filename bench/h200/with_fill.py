"""`harness bench` exactly as shipped, except that the lock leaves PyTorch's NaN fill of
uninitialised memory on (the behaviour before issue 8). Only for showing that the fidelity check
(bench/fidelity.py) fails on that behaviour; never for results that are checked.

    PYTHONPATH=. python3 bench/h200/with_fill.py bench --profile full --out DIR --no-progress
"""

import sys

from harness import envlock

envlock.FILL_UNINITIALIZED_MEMORY = True

from harness.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
