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


def _signed_attributes(data: bytes, signing_time: dt.datetime) -> cms.CMSAttributes:
    return cms.CMSAttributes([
        cms.CMSAttribute({"type": "content_type", "values": ["data"]}),
        cms.CMSAttribute({"type": "signing_time",
                          "values": [cms.Time({"utc_time": signing_time})]}),
        cms.CMSAttribute({"type": "message_digest", "values": [hashlib.sha256(data).digest()]}),
    ])


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
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError("data must be bytes")
    when = (signing_time or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    cert = certificate or client.read_certificate(key.cert)
    cert_asn1 = ax509.Certificate.load(cert.public_bytes(Encoding.DER))
    attrs = _signed_attributes(bytes(data), when)
    to_be_signed = attrs.dump(force=True)  # DER of the SET OF, as RFC 5652 5.4 requires
    signature = client.sign(key, digest_info("sha256", hashlib.sha256(to_be_signed).digest()))
    signer = cms.SignerInfo({
        "version": "v1",
        "sid": cms.SignerIdentifier({"issuer_and_serial_number": cms.IssuerAndSerialNumber({
            "issuer": cert_asn1.issuer, "serial_number": cert_asn1.serial_number})}),
        "digest_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
        "signed_attrs": attrs,
        "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": "rsassa_pkcs1v15"}),
        "signature": signature,
    })
    content: dict[str, object] = {"content_type": "data"}
    if not detached:
        content["content"] = core.OctetString(bytes(data))
    signed_data = cms.SignedData({
        "version": "v1",
        "digest_algorithms": [algos.DigestAlgorithm({"algorithm": "sha256"})],
        "encap_content_info": cms.ContentInfo(content),
        "certificates": [cms.CertificateChoices({"certificate": cert_asn1})],
        "signer_infos": [signer],
    })
    return cms.ContentInfo({"content_type": "signed_data", "content": signed_data}).dump()
