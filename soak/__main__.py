"""`python -m soak`: one soak, its report printed and written to soak/results/; exit 1
unless every invariant held and every fault was recovered from.

SOAK_SECONDS (600), SOAK_RATE (1000 detections/s), SOAK_SEED (1), SOAK_HOME (where its
servers keep their state and every process its log: .roadwatch/soak).
"""

import asyncio
import logging
import os
import shutil
import sys
from pathlib import Path

from soak.report import report
from soak.run import SoakPlan, soak

RESULTS = Path(__file__).parent / "results"


def main() -> int:
    plan = SoakPlan(
        seconds=float(os.environ.get("SOAK_SECONDS", "600")),
        rate=float(os.environ.get("SOAK_RATE", "1000")),
        seed=int(os.environ.get("SOAK_SEED", "1")),
    )
    # The soak's own clients meet every outage it causes; their complaints are expected.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    home = Path(os.environ.get("SOAK_HOME", ".roadwatch/soak")).resolve()
    shutil.rmtree(home, ignore_errors=True)
    result = asyncio.run(soak(plan, home=home))
    text = report(result)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"soak-{plan.seconds:.0f}s-seed{plan.seed}.md").write_text(text)
    return 0 if result.held else 1


if __name__ == "__main__":
    sys.exit(main())
