"""CMS SignedData made with a JPKI key on the card (RFC 5652, as jpki/myna's `cms_sign`).

The host builds the signed attributes and hashes them; the card only signs the
DigestInfo, so the private key never leaves it. The result verifies with OpenSSL
(`openssl cms -verify`) and with `mynacard verify --cms`.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from asn1crypto import algos, cms, core
from asn1crypto import x509 as ax509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from card.jpki import JpkiClient, Key, digest_info


def signed_attributes(data: bytes, signing_time: dt.datetime | None = None) -> bytes:
    """The DER SET OF signed attributes over `data`: what the signer's key signs (RFC 5652
    5.4). A signer outside this library (OpenSC's PKCS#11 module, say) signs these bytes
    with SHA256-RSA-PKCS, and `assemble` wraps its signature."""
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError("data must be bytes")
    when = (signing_time or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    attrs = cms.CMSAttributes([
        cms.CMSAttribute({"type": "content_type", "values": ["data"]}),
        cms.CMSAttribute({"type": "signing_time", "values": [cms.Time({"utc_time": when})]}),
        cms.CMSAttribute({"type": "message_digest",
                          "values": [hashlib.sha256(bytes(data)).digest()]}),
    ])
    return attrs.dump(force=True)


def assemble(
    certificate: x509.Certificate,
    signed_attrs: bytes,
    signature: bytes,
    *,
    content: bytes | None = None,
) -> bytes:
    """A DER CMS SignedData from signed attributes and the RSA PKCS#1 v1.5 signature over
    them; `content` embeds the data (attached), else the signature is detached."""
    cert_asn1 = ax509.Certificate.load(certificate.public_bytes(Encoding.DER))
    signer = cms.SignerInfo({
        "version": "v1",
        "sid": cms.SignerIdentifier({"issuer_and_serial_number": cms.IssuerAndSerialNumber({
            "issuer": cert_asn1.issuer, "serial_number": cert_asn1.serial_number})}),
        "digest_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
        "signed_attrs": cms.CMSAttributes.load(signed_attrs),
        "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": "rsassa_pkcs1v15"}),
        "signature": signature,
    })
    encap: dict[str, object] = {"content_type": "data"}
    if content is not None:
        encap["content"] = core.OctetString(bytes(content))
    signed_data = cms.SignedData({
        "version": "v1",
        "digest_algorithms": [algos.DigestAlgorithm({"algorithm": "sha256"})],
        "encap_content_info": cms.ContentInfo(encap),
        "certificates": [cms.CertificateChoices({"certificate": cert_asn1})],
        "signer_infos": [signer],
    })
    return cms.ContentInfo({"content_type": "signed_data", "content": signed_data}).dump()


def sign_cms(
    client: JpkiClient,
    data: bytes,
    *,
    key: Key = Key.SIGN,
    certificate: x509.Certificate | None = None,
    detached: bool = True,
    signing_time: dt.datetime | None = None,
) -> bytes:
    """A DER CMS SignedData over `data`, signed on the card with `key`.

    The key's PIN must have been verified on `client` first. The certificate is read
    from the card unless given; it is embedded so verifiers need only the roots.
    """
    attrs = signed_attributes(data, signing_time)
    cert = certificate or client.read_certificate(key.cert)
    signature = client.sign(key, digest_info("sha256", hashlib.sha256(attrs).digest()))
    return assemble(cert, attrs, signature, content=None if detached else bytes(data))
