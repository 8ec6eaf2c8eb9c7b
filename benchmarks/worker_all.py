"""Every worker benchmark in one run, as one JSON document.

    .venv/bin/python benchmarks/worker_all.py [--quick]

Takes about 2–3 minutes on 2 cores (the lateness scenario alone spans 60 s).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import harness as bench

if __name__ == "__main__":
    print(json.dumps(bench.run_all(quick="--quick" in sys.argv[1:]), indent=2))
