"""Issue one card in its own process and die with SIGKILL at a given step.

usage: workflow_crash_worker.py HOME DB_URL APPLICATION READER STEP
STEP: one of issuance.workflow.issue.STEPS (the process sends itself SIGKILL right after
that step), or `none` (finish and print the result as JSON).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

from issuance.storage import open_database
from issuance.workflow.center import Center
from issuance.workflow.issue import Issuer


def main() -> int:
    home, db_url, app, reader, target = sys.argv[1:6]

    def hook(step: str) -> None:
        if step == target:
            os.kill(os.getpid(), signal.SIGKILL)

    with open_database(db_url) as db, Center.open(Path(home)) as center:
        result = Issuer(db, center, operator="crash-worker", on_step=hook).issue(app, reader)
    print(json.dumps(result.to_json()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
