"""Signers: every kind verifies with cryptography; x509/CRL/OCSP builders sign through the
HSM; threads and fork."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

from hsm import HsmEcSigner, HsmError, HsmRsaSigner, KeyKind, KeyManager, UnsupportedAlgorithm

NOW = dt.datetime(2026, 11, 22, 0, 0, tzinfo=dt.UTC)
HASHES = [hashes.SHA256(), hashes.SHA384(), hashes.SHA512(), hashes.SHA224()]


def _verify(signer: HsmRsaSigner | HsmEcSigner, sig: bytes, data: bytes, *args: object) -> None:
    signer.public_key().verify(sig, data, *args)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", [KeyKind.RSA_2048, KeyKind.RSA_3072, KeyKind.RSA_4096])
def test_rsa_pkcs1v15_every_hash(km: KeyManager, kind: KeyKind) -> None:
    km.create_key("rsa", kind=kind)
    signer = km.signer("rsa")
    assert isinstance(signer, rsa.RSAPrivateKey) and isinstance(signer, HsmRsaSigner)
    assert signer.key_size == kind.bits
    data = b"JPKI " * 100
    for h in HASHES:
        sig = signer.sign(data, padding.PKCS1v15(), h)
        assert len(sig) == kind.bits // 8
        _verify(signer, sig, data, padding.PKCS1v15(), h)


def test_rsa_prehashed_and_pss(km: KeyManager) -> None:
    km.create_key("rsa", kind=KeyKind.RSA_2048)
    signer = km.signer("rsa")
    data = b"prehash me"
    digest = hashes.Hash(hashes.SHA256())
    digest.update(data)
    d = digest.finalize()
    sig = signer.sign(d, padding.PKCS1v15(), Prehashed(hashes.SHA256()))
    _verify(signer, sig, data, padding.PKCS1v15(), hashes.SHA256())
    # PKCS#1 v1.5 is deterministic: the same as hashing on the way
    assert sig == signer.sign(data, padding.PKCS1v15(), hashes.SHA256())
    with pytest.raises(ValueError):
        signer.sign(d[:-1], padding.PKCS1v15(), Prehashed(hashes.SHA256()))

    for salt in (padding.PSS.MAX_LENGTH, padding.PSS.DIGEST_LENGTH, 20):
        for h in (hashes.SHA256(), hashes.SHA384()):
            pss = padding.PSS(mgf=padding.MGF1(h), salt_length=salt)
            sig = signer.sign(data, pss, h)
            _verify(signer, sig, data, pss, h)
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
    sig = signer.sign(d, pss, Prehashed(hashes.SHA256()))
    _verify(signer, sig, data, pss, hashes.SHA256())
    with pytest.raises(ValueError):
        signer.sign(data, padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.AUTO),
                    hashes.SHA256())
    with pytest.raises(UnsupportedAlgorithm):
        signer.sign(data, padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None),
                    hashes.SHA256())


@pytest.mark.parametrize("kind", [KeyKind.EC_P256, KeyKind.EC_P384])
def test_ecdsa_der(km: KeyManager, kind: KeyKind) -> None:
    km.create_key("ec", kind=kind)
    signer = km.signer("ec")
    assert isinstance(signer, ec.EllipticCurvePrivateKey) and isinstance(signer, HsmEcSigner)
    assert signer.key_size == kind.bits
    assert type(signer.curve) is type(kind.curve())
    data = b"ecdsa data"
    for h in HASHES:
        sig = signer.sign(data, ec.ECDSA(h))
        assert sig[0] == 0x30  # DER SEQUENCE, not raw r||s
        _verify(signer, sig, data, ec.ECDSA(h))
    digest = hashes.Hash(hashes.SHA256())
    digest.update(data)
    sig = signer.sign(digest.finalize(), ec.ECDSA(Prehashed(hashes.SHA256())))
    _verify(signer, sig, data, ec.ECDSA(hashes.SHA256()))
    with pytest.raises(HsmError):
        signer.exchange(ec.ECDH(), signer.public_key())
    with pytest.raises(UnsupportedAlgorithm):
        signer.sign(data, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))


def _ca_cert(signer: HsmRsaSigner | HsmEcSigner, cn: str) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(signer.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW)
        .not_valid_after(NOW + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(signer.public_key()),
                       critical=False)
        .sign(signer, hashes.SHA256())
    )


@pytest.mark.parametrize("kind", [KeyKind.RSA_2048, KeyKind.EC_P256])
def test_certificate_verifies_with_openssl(km: KeyManager, tmp_path: Path, kind: KeyKind) -> None:
    km.create_key("root", kind=kind)
    signer = km.signer("root")
    cert = _ca_cert(signer, "mynacard test root")
    cert.verify_directly_issued_by(cert)
    pem = tmp_path / "root.pem"
    pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    text = subprocess.run(
        ["openssl", "x509", "-in", str(pem), "-noout", "-text"],
        check=True, capture_output=True, text=True,
    ).stdout
    assert "mynacard test root" in text
    expected = "sha256WithRSAEncryption" if kind.is_rsa else "ecdsa-with-SHA256"
    assert expected in text
    verify = subprocess.run(
        ["openssl", "verify", "-CAfile", str(pem), "-attime", str(int(NOW.timestamp()) + 60),
         str(pem)],
        capture_output=True, text=True,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert f"{pem}: OK" in verify.stdout

    # an end-entity certificate issued by the HSM key verifies against it
    leaf_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "holder")]))
        .issuer_name(cert.subject)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW)
        .not_valid_after(NOW + dt.timedelta(days=365))
        .sign(signer, hashes.SHA256())
    )
    leaf_pem = tmp_path / "leaf.pem"
    leaf_pem.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    verify = subprocess.run(
        ["openssl", "verify", "-CAfile", str(pem), "-attime", str(int(NOW.timestamp()) + 60),
         str(leaf_pem)],
        capture_output=True, text=True,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_crl_and_ocsp_sign_through_hsm(km: KeyManager) -> None:
    km.create_key("ca", kind=KeyKind.RSA_2048)
    signer = km.signer("ca")
    ca = _ca_cert(signer, "crl ca")
    revoked = (
        x509.RevokedCertificateBuilder()
        .serial_number(1234)
        .revocation_date(NOW)
        .add_extension(x509.CRLReason(x509.ReasonFlags.affiliation_changed), critical=False)
        .build()
    )
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.subject)
        .last_update(NOW)
        .next_update(NOW + dt.timedelta(days=1))
        .add_revoked_certificate(revoked)
        .add_extension(x509.CRLNumber(1), critical=False)
        .sign(signer, hashes.SHA256())
    )
    assert crl.is_signature_valid(signer.public_key())
    assert crl.get_revoked_certificate_by_serial_number(1234) is not None

    holder_key = ec.generate_private_key(ec.SECP256R1())
    holder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "h")]))
        .issuer_name(ca.subject)
        .public_key(holder_key.public_key())
        .serial_number(1234)
        .not_valid_before(NOW)
        .not_valid_after(NOW + dt.timedelta(days=365))
        .sign(signer, hashes.SHA256())
    )
    response = (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=holder, issuer=ca, algorithm=hashes.SHA256(),
            cert_status=ocsp.OCSPCertStatus.REVOKED, this_update=NOW,
            next_update=NOW + dt.timedelta(hours=1), revocation_time=NOW,
            revocation_reason=x509.ReasonFlags.affiliation_changed,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, ca)
        .sign(signer, hashes.SHA256())
    )
    parsed = ocsp.load_der_ocsp_response(response.public_bytes(serialization.Encoding.DER))
    assert parsed.certificate_status == ocsp.OCSPCertStatus.REVOKED
    signer.public_key().verify(
        parsed.signature, parsed.tbs_response_bytes, padding.PKCS1v15(), hashes.SHA256()
    )


@pytest.mark.parametrize("kind", [KeyKind.RSA_2048, KeyKind.EC_P256])
def test_signing_from_many_threads(km: KeyManager, kind: KeyKind) -> None:
    km.create_key("busy", kind=kind)
    signer = km.signer("busy")
    pub = signer.public_key()

    def one(i: int) -> tuple[bytes, bytes]:
        data = f"message {i}".encode()
        if kind.is_rsa:
            assert isinstance(signer, HsmRsaSigner)
            return data, signer.sign(data, padding.PKCS1v15(), hashes.SHA256())
        assert isinstance(signer, HsmEcSigner)
        return data, signer.sign(data, ec.ECDSA(hashes.SHA256()))

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(one, range(200)))
    for data, sig in results:
        if isinstance(pub, rsa.RSAPublicKey):
            pub.verify(sig, data, padding.PKCS1v15(), hashes.SHA256())
        else:
            assert isinstance(pub, ec.EllipticCurvePublicKey)
            pub.verify(sig, data, ec.ECDSA(hashes.SHA256()))
    # the pool grew to several sessions and kept them (idle or pinned to a worker thread;
    # the main thread may hold one pinned from earlier tests)
    assert 1 < km._pool.kept <= 8 + 1


def test_child_process_signs_after_fork(km: KeyManager) -> None:
    km.create_key("forked", kind=KeyKind.RSA_2048)
    signer = km.signer("forked")
    assert isinstance(signer, HsmRsaSigner)
    parent_sig = signer.sign(b"parent", padding.PKCS1v15(), hashes.SHA256())
    generation = km._pool.module.generation
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: sign with the inherited signer, report, exit without cleanup
        status = 1
        try:
            os.close(read_end)
            sig = signer.sign(b"child", padding.PKCS1v15(), hashes.SHA256())
            gen = km._pool.module.generation
            os.write(write_end, gen.to_bytes(4, "big") + sig)
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as f:
        payload = f.read()
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    child_gen, child_sig = int.from_bytes(payload[:4], "big"), payload[4:]
    assert child_gen > generation  # the child re-initialised the library
    signer.public_key().verify(child_sig, b"child", padding.PKCS1v15(), hashes.SHA256())
    # the parent is unaffected
    again = signer.sign(b"parent", padding.PKCS1v15(), hashes.SHA256())
    assert again == parent_sig


def test_a_thread_keeps_its_session(km: KeyManager) -> None:
    pool = km._pool
    with pool.session() as first:
        pass
    with pool.session() as again:
        assert again is first  # pinned to this thread: no pool round trip
        with pool.session() as nested:  # a nested borrow gets a session of its own
            assert nested is not first
    with pool.session() as again:
        assert again is first
    seen: list[object] = []

    def other() -> None:
        with pool.session() as ps:
            seen.append(ps)

    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert seen and seen[0] is not first


def test_a_failed_call_drops_the_pinned_session(km: KeyManager) -> None:
    pool = km._pool
    with pool.session() as first:
        pass
    with pytest.raises(RuntimeError):
        with pool.session() as ps:
            assert ps is first
            raise RuntimeError("boom")
    assert first not in pool._pinned
    with pool.session() as fresh:
        assert fresh is not first


def test_sessions_of_ended_threads_are_reclaimed(km: KeyManager) -> None:
    pool = km._pool
    pool._max_idle = 2

    def borrow() -> None:
        with pool.session():
            pass

    for _ in range(5):
        t = threading.Thread(target=borrow)
        t.start()
        t.join()
    assert len(pool._pinned) <= 2 and pool.kept <= 4
    signer = km.signer(km.create_key("after-threads", kind=KeyKind.RSA_2048).label)
    assert isinstance(signer, HsmRsaSigner)
    sig = signer.sign(b"x", padding.PKCS1v15(), hashes.SHA256())
    signer.public_key().verify(sig, b"x", padding.PKCS1v15(), hashes.SHA256())


def test_close_closes_pinned_sessions(km: KeyManager) -> None:
    pool = km._pool
    with pool.session():
        pass
    assert pool.kept >= 1
    km.close()
    assert pool.kept == 0 and not pool._pinned
    with pytest.raises(HsmError):
        with pool.session():
            pass
