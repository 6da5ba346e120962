"""CRL shards: IssuingDistributionPoint, growing numbers, entries with reasons."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from pki.crl import CrlPublisher
from pki.profiles import Hierarchy


def test_publish_all_shards(km, session_ca, issuing, store, clock, holder_key, adult,
                            tmp_path: Path) -> None:
    issued = [issuing.issue_signing(public_key=holder_key.public_key(), identity=adult,
                                    holder_id=f"R{i}", card_expiry=dt.date(2035, 1, 1))
              for i in range(8)]
    victim, held = issued[0], issued[1]
    clock.advance(minutes=5)
    store.revoke(victim.serial, reason=x509.ReasonFlags.affiliation_changed, cause="n-1",
                 at=clock.now)
    store.hold(held.serial, at=clock.now)
    pub = CrlPublisher(key_source=km, ca=session_ca, store=store, clock=clock)
    out = tmp_path / "crl"
    shards = pub.publish(out)
    assert len(shards) == 3 * session_ca.shards  # sign, auth and operator
    root = session_ca.hierarchies[Hierarchy.SIGN].root_cert
    for s in shards:
        crl = x509.load_der_x509_crl(s.path.read_bytes())
        assert s.path == out / s.hierarchy.value / f"shard-{s.shard:04d}.crl"
        assert crl.is_signature_valid(session_ca.hierarchies[s.hierarchy].root_cert.public_key())
        idp = crl.extensions.get_extension_for_class(x509.IssuingDistributionPoint)
        assert idp.critical and idp.value.only_contains_user_certs
        assert idp.value.full_name[0].value == session_ca.crl_url(s.hierarchy, s.shard)
        assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 1
        assert crl.last_update_utc == clock.now
        assert crl.next_update_utc == clock.now + dt.timedelta(days=1)
    victim_crl = x509.load_der_x509_crl(
        (out / "sign" / f"shard-{victim.shard:04d}.crl").read_bytes())
    entry = victim_crl.get_revoked_certificate_by_serial_number(victim.serial)
    assert entry is not None and entry.revocation_date_utc == clock.now
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason \
        is x509.ReasonFlags.affiliation_changed
    held_crl = x509.load_der_x509_crl((out / "sign" / f"shard-{held.shard:04d}.crl").read_bytes())
    held_entry = held_crl.get_revoked_certificate_by_serial_number(held.serial)
    assert held_entry.extensions.get_extension_for_class(x509.CRLReason).value.reason \
        is x509.ReasonFlags.certificate_hold
    # only the revoked certificates of a shard are in it
    for other in issued[2:]:
        crl = x509.load_der_x509_crl((out / "sign" / f"shard-{other.shard:04d}.crl").read_bytes())
        assert crl.get_revoked_certificate_by_serial_number(other.serial) is None
    # the numbers grow with each publication
    clock.advance(hours=1)
    again = pub.publish(out)
    assert {s.crl_number for s in again} == {2}
    # openssl reads and verifies a shard
    root_pem = tmp_path / "root.pem"
    root_pem.write_bytes(root.public_bytes(Encoding.PEM))
    res = subprocess.run(["openssl", "crl", "-inform", "DER", "-in",
                          out / "sign" / f"shard-{victim.shard:04d}.crl", "-CAfile", root_pem,
                          "-noout", "-text"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "verify OK" in res.stderr + res.stdout
    assert "Affiliation Changed" in res.stdout
    assert "Issuing Distribution Point: critical" in res.stdout


def test_large_shard_is_fast(km, session_ca, store, clock) -> None:
    """20,000 revoked certificates in one shard: built and signed in the HSM quickly."""
    import time

    now = int(clock.now.timestamp())
    rows = [(format(10**20 + i * 4, "x"), "sign", "signing", f"H{i}", 0, now, now,
             now + 10**8, "revoked", 1, now, now, b"x") for i in range(20_000)]
    with store.transaction():
        store._db.conn.executemany(
            "INSERT INTO certificates (serial, hierarchy, profile, holder_id, shard, issued_at,"
            " not_before, not_after, status, reason, revoked_at, updated_at, der)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    pub = CrlPublisher(key_source=km, ca=session_ca, store=store, clock=clock)
    t = time.perf_counter()
    crl = pub.build_shard(Hierarchy.SIGN, 0)
    elapsed = time.perf_counter() - t
    assert len(crl) == 20_000
    assert elapsed < 2, elapsed


def test_bench_support_seeds_a_shard(km, session_ca, store, clock, tmp_path: Path) -> None:
    from bench._pki_support import seed_certificates

    serials = seed_certificates(store, count=1000, hierarchy="auth", shards=session_ca.shards,
                                only_shard=2, revoked=True, now=clock.now)
    assert all(s % session_ca.shards == 2 for s in serials)
    crl = CrlPublisher(key_source=km, ca=session_ca, store=store,
                       clock=clock).build_shard(Hierarchy.AUTH, 2)
    assert len(crl) == 1000
    path = tmp_path / "big.crl"
    path.write_bytes(crl.public_bytes(Encoding.DER))
    root = tmp_path / "root.pem"
    root.write_bytes(session_ca.hierarchies[Hierarchy.AUTH].root_cert.public_bytes(Encoding.PEM))
    res = subprocess.run(["openssl", "crl", "-inform", "DER", "-in", path, "-CAfile", root,
                          "-noout"], capture_output=True, text=True)
    assert res.returncode == 0 and "verify OK" in res.stderr + res.stdout
