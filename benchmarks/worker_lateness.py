"""Worker benchmark: lateness (see benchmarks/harness.py for what it measures). Prints JSON.

    .venv/bin/python benchmarks/worker_lateness.py [--quick]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import harness as bench

QUICK = {
    "lateness": {"n": 50, "spread_s": 3.0},
    "wave": {"n": 40, "pool": 8, "latency": 0.02},
    "sweep": {"n": 300, "accounts": 5},
    "footprint": {"n": 300, "settle_s": 2.0, "measure_s": 2.0},
}

if __name__ == "__main__":
    kwargs = QUICK["lateness"] if "--quick" in sys.argv[1:] else {}
    print(json.dumps({"lateness": bench.lateness(**kwargs)}, indent=2))
