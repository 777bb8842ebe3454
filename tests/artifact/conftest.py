"""The artifact tests mirror artifact/'s packages (launch/, results/, report/, derive/, claims/);
their shared helpers (resultsfolders, cliparse) live here, on the path for every one of them."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)
