"""A revocation is answered by OCSP within a second of the notice being accepted: the real
`mynacard ocsp serve`, a death notice through `mynacard notices ingest`, OCSP polled over
HTTP meanwhile."""

from __future__ import annotations

import datetime as dt
import threading
import time
import urllib.request
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from publication_support import OPERATOR, issue, load_resident, new_resident, notice_file, run


def _status(url: str, body: bytes, token: str) -> ocsp.OCSPCertStatus:
    req = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/ocsp-request", "Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return ocsp.load_der_ocsp_response(resp.read()).certificate_status


def test_death_notice_is_revoked_in_ocsp_within_one_second(
        pub_home: Path, cli_ocsp: str, rp_token: str, tmp_path: Path) -> None:
    person = new_resident()
    load_resident(pub_home, person)
    root = x509.load_pem_x509_certificate((pub_home / "ca" / "sign-root.pem").read_bytes())
    _, sign_pem = issue(pub_home, person.resident_code, "signing")
    cert = x509.load_pem_x509_certificate(sign_pem.read_bytes())
    body = ocsp.OCSPRequestBuilder().add_certificate(cert, root, hashes.SHA1()).build() \
        .public_bytes(Encoding.DER)
    assert _status(cli_ocsp, body, rp_token) is ocsp.OCSPCertStatus.GOOD

    seen: list[float] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            if _status(cli_ocsp, body, rp_token) is ocsp.OCSPCertStatus.REVOKED:
                seen.append(time.time())
                return
            time.sleep(0.01)

    poller = threading.Thread(target=poll)
    poller.start()
    death = {"id": f"fresh-{person.resident_code}", "source": "juki", "kind": "death",
             "resident_code": person.resident_code, "effective_date": "2026-06-01"}
    try:
        run(pub_home, "notices", "ingest", str(notice_file(tmp_path / "d.jsonl", death)),
            *OPERATOR, check=True)
        poller.join(10)
    finally:
        stop.set()
        poller.join(5)
    assert seen, "OCSP never said revoked"

    from issuance.storage import default_url, open_database

    with open_database(default_url(pub_home)) as db, db.transaction() as tx:
        row = tx.query_one("SELECT received_at, state FROM notices WHERE source = 'juki'"
                           " AND id = ?", (death["id"],))
    assert row is not None and row["state"] == "applied"
    accepted = dt.datetime.fromisoformat(row["received_at"]).timestamp()
    assert 0 <= seen[0] - accepted <= 1.0, seen[0] - accepted
