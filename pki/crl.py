"""CRL shards: each certificate belongs to shard ``serial mod N`` (N fixed at CA init),
named in its CRL distribution point (``…/sign/shard-0007.crl``). Each shard's CRL
carries a critical IssuingDistributionPoint with that same URL, a CRL number that only
grows (persisted per shard in the store), thisUpdate/nextUpdate and reason codes, and
is signed by the hierarchy's root key in the HSM. Files are DER.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from hsm.files import write_file
from pki.ca import CAConfig, crl_file_name
from pki.errors import CrlError
from pki.keys import Clock, KeySource, utc_now
from pki.profiles import Hierarchy
from pki.store import REASON_CODES, CertificateStore, RevokedEntry

DEFAULT_CRL_VALIDITY = dt.timedelta(days=1)


@dataclasses.dataclass(frozen=True)
class PublishedShard:
    hierarchy: Hierarchy
    shard: int
    path: Path
    crl_number: int
    entries: int


def issuing_distribution_point(url: str) -> x509.IssuingDistributionPoint:
    return x509.IssuingDistributionPoint(
        full_name=[x509.UniformResourceIdentifier(url)], relative_name=None,
        only_contains_user_certs=True, only_contains_ca_certs=False, only_some_reasons=None,
        indirect_crl=False, only_contains_attribute_certs=False,
    )


class CrlPublisher:
    """Builds and writes the CRL shards of both hierarchies.

    Reads revocations from the store; its only write is reserving the next CRL number.
    """

    def __init__(self, *, key_source: KeySource, ca: CAConfig, store: CertificateStore,
                 clock: Clock = utc_now, validity: dt.timedelta = DEFAULT_CRL_VALIDITY) -> None:
        if not isinstance(ca, CAConfig):
            raise TypeError("ca must be a CAConfig (pki.ca.load_ca)")
        if not isinstance(store, CertificateStore):
            raise TypeError("store must be a CertificateStore (CRL numbers are persisted)")
        if validity <= dt.timedelta(0):
            raise ValueError("validity must be positive")
        self._ca, self._keys, self._store = ca, key_source, store
        self._clock, self._validity = clock, validity
        self._signers: dict[Hierarchy, rsa.RSAPrivateKey] = {}

    def _signer(self, h: Hierarchy) -> rsa.RSAPrivateKey:
        if h not in self._signers:
            label = self._ca.hierarchies[h].root_key
            signer = self._keys.signer(label)
            if not isinstance(signer, rsa.RSAPrivateKey):
                raise CrlError(f"key {label!r} is not an RSA key (JPKI roots are RSA)")
            self._signers[h] = signer
        return self._signers[h]

    def build_shard(self, hierarchy: Hierarchy, shard: int) -> x509.CertificateRevocationList:
        """Build and sign one shard's CRL (reserves the next CRL number)."""
        if not isinstance(hierarchy, Hierarchy):
            raise TypeError("hierarchy must be a pki.profiles.Hierarchy")
        if not 0 <= shard < self._ca.shards:
            raise ValueError(f"shard must be in 0..{self._ca.shards - 1}")
        hc = self._ca.hierarchies[hierarchy]
        now = self._clock()
        entries = self._store.revoked_in_shard(hierarchy.value, shard, unexpired_at=now)
        number = self._store.next_crl_number(hierarchy.value, shard)
        ski = hc.root_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        # cryptography encodes the header and extensions (an empty CRL); the entries are
        # DER-encoded here in one pass and spliced in (RevokedCertificateBuilder costs
        # ~15 us per entry, too slow for 100,000-entry shards), then the TBS is re-signed.
        builder = (
            x509.CertificateRevocationListBuilder(
                issuer_name=hc.root_cert.subject, last_update=now,
                next_update=now + self._validity)
            .add_extension(x509.CRLNumber(number), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                           critical=False)
            .add_extension(issuing_distribution_point(self._ca.crl_url(hierarchy, shard)),
                           critical=True)
        )
        signer = self._signer(hierarchy)
        try:
            empty = builder.sign(signer, hashes.SHA256())
            if not entries:
                return empty
            tbs = _splice_entries(empty.tbs_certlist_bytes, _encode_entries(entries))
            signature = signer.sign(tbs, padding.PKCS1v15(), hashes.SHA256())
        except (TypeError, ValueError):
            raise
        except Exception as exc:
            raise CrlError(f"signing {hierarchy.value} shard {shard} failed: {exc}") from exc
        alg = _tlvs(_tlv_content(empty.tbs_certlist_bytes))[1]
        der = _tlv(0x30, tbs + alg + _tlv(0x03, b"\x00" + signature))
        return x509.load_der_x509_crl(der)

    def publish(self, out_dir: Path | str,
                progress: Callable[[], None] | None = None) -> list[PublishedShard]:
        """Write every shard of every hierarchy to ``out_dir/<hierarchy>/shard-NNNN.crl``
        (`progress()` after each, for the CLI's counter on a terminal)."""
        out = Path(out_dir)
        published = []
        for h in self._ca.hierarchies:
            (out / h.value).mkdir(parents=True, exist_ok=True)
            for shard in range(self._ca.shards):
                crl = self.build_shard(h, shard)
                path = out / h.value / crl_file_name(shard)
                # replaced whole, through a new temporary file (never a planted symlink);
                # a CRL is public
                write_file(path, crl.public_bytes(Encoding.DER), force=True, mode=0o644)
                number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
                published.append(PublishedShard(h, shard, path, number, len(crl)))
                if progress is not None:
                    progress()
        return published


# -- DER helpers for the revokedCertificates list ------------------------------------------
def _len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def _tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _len(len(content)) + content


def _integer(value: int) -> bytes:
    return _tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def _time(t: dt.datetime) -> bytes:
    t = t.astimezone(dt.UTC)
    if 1950 <= t.year < 2050:
        return _tlv(0x17, t.strftime("%y%m%d%H%M%SZ").encode())
    return _tlv(0x18, t.strftime("%Y%m%d%H%M%SZ").encode())


_OID_CRL_REASON = bytes.fromhex("0603551d15")  # 2.5.29.21
_REASON_EXT = {
    code: _tlv(0x30, _tlv(0x30, _OID_CRL_REASON + _tlv(0x04, _tlv(0x0A, bytes([code])))))
    for code in REASON_CODES.values()
}


def _encode_entries(entries: list[RevokedEntry]) -> bytes:
    out = []
    times: dict[dt.datetime, bytes] = {}
    for e in entries:
        when = times.get(e.revoked_at)
        if when is None:
            when = times[e.revoked_at] = _time(e.revoked_at)
        body = _integer(e.serial) + when
        if e.reason is not None and e.reason is not x509.ReasonFlags.unspecified:
            body += _REASON_EXT[REASON_CODES[e.reason]]
        out.append(_tlv(0x30, body))
    return _tlv(0x30, b"".join(out))


def _read_tlv(data: bytes, pos: int) -> int:
    """End offset of the TLV starting at `pos`."""
    first = data[pos + 1]
    if first < 0x80:
        return pos + 2 + first
    n = first & 0x7F
    return pos + 2 + n + int.from_bytes(data[pos + 2:pos + 2 + n], "big")


def _tlv_content(data: bytes) -> bytes:
    first = data[1]
    start = 2 if first < 0x80 else 2 + (first & 0x7F)
    return data[start:_read_tlv(data, 0)]


def _tlvs(content: bytes) -> list[bytes]:
    items, pos = [], 0
    while pos < len(content):
        end = _read_tlv(content, pos)
        items.append(content[pos:end])
        pos = end
    return items


def _splice_entries(tbs: bytes, revoked: bytes) -> bytes:
    """Insert revokedCertificates after nextUpdate in an entry-less TBSCertList."""
    items = _tlvs(_tlv_content(tbs))
    # version, signature, issuer, thisUpdate, nextUpdate, [0] crlExtensions
    if len(items) != 6 or items[0][0] != 0x02 or items[5][0] != 0xA0:
        raise CrlError("unexpected TBSCertList layout")
    return _tlv(0x30, b"".join(items[:5]) + revoked + items[5])
