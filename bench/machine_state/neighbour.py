"""Another process on the GPU, as a reviewer's shared node has one: fp16 matmuls back to back for
--seconds (8192^3, the ceilings' size). Writes --ready once its kernels run, so a script can start
a measurement beside it at a known moment. Used by run.sh (issue 17)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--ready", type=Path)
    ap.add_argument("--n", type=int, default=8192)
    args = ap.parse_args()
    a = torch.randn(args.n, args.n, device="cuda", dtype=torch.float16)
    b = torch.randn_like(a)
    c = torch.empty_like(a)
    torch.mm(a, b, out=c)
    torch.cuda.synchronize()
    if args.ready:
        args.ready.write_text(f"{__import__('os').getpid()}\n")
    end = time.monotonic() + args.seconds
    calls = 0
    while time.monotonic() < end:
        for _ in range(20):
            torch.mm(a, b, out=c)
        torch.cuda.synchronize()
        calls += 20
    print(f"neighbour: {calls} matmuls of {args.n}^3 in {args.seconds:g} s")


if __name__ == "__main__":
    main()
