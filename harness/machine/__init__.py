"""The machine judged apart from the kernel (issue 17), torch-free.

`gate.py` looks at the GPU before anything runs and refuses one that another process computes on;
`watch.py` reads NVML after every sampling batch and has batches that ran beside another process,
or below the throttle threshold, discarded and measured again."""
