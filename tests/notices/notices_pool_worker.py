"""One of several notice processors sharing a database (tests/notices/test_notices_workers.py).

usage: notices_pool_worker.py DB_URL STORE_URL NAME MODE N MARKER
MODE wait:  after this worker's N-th revocation (the certificate store committed it, the
            notices are not yet marked applied) write MARKER and wait to be killed;
MODE none:  apply until no bucket is left, print how many notices this worker applied.
Each applied batch is audited by operator NAME in the batch's transaction. The clock
is the fixed test day plus the real time elapsed, so `applied_at` shows apply order.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from pathlib import Path

from issuance.notices.certificates import CertificateGateway
from issuance.notices.processor import NoticeProcessor
from issuance.storage import open_database

NOW = dt.datetime(2026, 11, 22, 3, 0, tzinfo=dt.UTC)


def main() -> int:
    db_url, store_url, name, mode, n, marker = sys.argv[1:7]
    limit = int(n)
    start = time.monotonic()

    def hook(count: int) -> None:
        if mode != "wait" or count < limit:
            return
        Path(marker).write_text(str(os.getpid()))
        while True:
            time.sleep(1)

    def clock() -> dt.datetime:
        return NOW + dt.timedelta(seconds=time.monotonic() - start)

    db = open_database(db_url)
    with CertificateGateway.open(store_url) as certs:
        report = NoticeProcessor(db, certs, clock=clock, on_revoked=hook, batch=400,
                                 audit_operator=name).process(until_free=True)
    db.close()
    print(report.applied)
    return 0


if __name__ == "__main__":
    sys.exit(main())
