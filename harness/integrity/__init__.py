"""Evidence that a case's timed calls did the real work (issue 16): the kernel under test is
untrusted code, so an `ok` case must show that the outputs of its timed replays were right on
inputs it had not seen, that the timed region ran an eager call's kernels, that its speed is
physically possible on this GPU, and that its event times agree with the host clock.

    roofline.py  the fastest the run's own ceilings allow (torch-free; the host checker uses it too)
    guard.py     the timers bound before a user's module is imported, and tamper detection
    outputs.py   rotated input sets refreshed during timing; the timed outputs against float64
    census.py    the timed graph's kernels against an eager call's (torch-free comparison)
    checks.py    the names and bounds of every check, and the verdict over them (torch-free)
"""
