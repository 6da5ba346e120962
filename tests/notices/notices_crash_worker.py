"""Run the notice processor in its own process and die in the middle of the batch.

usage: notices_crash_worker.py DB_URL STORE_URL MODE N MARKER
MODE exit:  os._exit(137) right after the N-th revocation (after the certificate store
            committed it, before the notice is marked applied);
MODE wait:  after the N-th revocation write MARKER and wait to be killed (kill -9);
MODE none:  process everything and exit 0.
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
    db_url, store_url, mode, n, marker = sys.argv[1:6]
    limit = int(n)

    def hook(count: int) -> None:
        if mode == "none" or count < limit:
            return
        if mode == "exit":
            os._exit(137)
        Path(marker).write_text(str(os.getpid()))
        while True:
            time.sleep(1)

    db = open_database(db_url)
    with CertificateGateway.open(store_url) as certs:
        report = NoticeProcessor(db, certs, clock=lambda: NOW, on_revoked=hook).process()
    db.close()
    print(report.applied)
    return 0


if __name__ == "__main__":
    sys.exit(main())
