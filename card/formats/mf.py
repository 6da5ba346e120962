"""MF-level data objects the card manager answers with GET DATA: the issuer ID (0042), the
card recognition data (0066), the intermediate key ID (00F7) and the two card-verifiable
certificates (00F8 root → intermediate, 7F21 intermediate → the card's key).

mynacard has one center key for all of these: the integrity key in the HSM. It is the root
and the intermediate (00F8 is its self-signed certificate, 00F7 and 0042 its key ID), and
7F21 certifies the card's internal-authentication key (共通カードAP EF 0019), so a reader
holding the center's key can check INTERNAL AUTHENTICATE answers. On the real card the
holder of 7F21 is not public.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import rsa

from card import contract, tlv
from card.formats.common import key_reference
from card.formats.signing import CvCertificate, cv_certificate, key_id, parse_cv_certificate
from card.tlv import MalformedData

ISSUER_KEY_ID_PREFIX = b"6000001"
GP_OID = bytes.fromhex("2A864886FC6B01")  # 1.2.840.114283.1: GlobalPlatform card recognition


def issuer_id(center_key: rsa.RSAPublicKey) -> bytes:
    """0042 and 00F7: the 16-byte key ID of the center's key."""
    return key_id(ISSUER_KEY_ID_PREFIX, center_key)


@dataclass(frozen=True)
class MfObjects:
    issuer_id: bytes
    intermediate_key_id: bytes
    chain_upper: bytes  # 00F8
    chain_lower: bytes  # 7F21

    def by_tag(self) -> dict[int, bytes]:
        return {contract.Tag.ISSUER_ID: self.issuer_id,
                contract.Tag.INTERMEDIATE_KEY_ID: self.intermediate_key_id,
                contract.Tag.CHAIN_UPPER: self.chain_upper,
                contract.Tag.CHAIN_LOWER: self.chain_lower}


def mf_objects(signer: rsa.RSAPrivateKey, card_key: rsa.RSAPublicKey) -> MfObjects:
    """The four objects the issuer writes with PUT DATA at personalisation."""
    public = signer.public_key()
    center = issuer_id(public)
    return MfObjects(
        issuer_id=center,
        intermediate_key_id=center,
        chain_upper=cv_certificate(signer, issuer_key_id=center, subject_key_id=center,
                                   subject_key=public),
        chain_lower=cv_certificate(signer, issuer_key_id=center,
                                   subject_key_id=key_reference(card_key), subject_key=card_key),
    )


@dataclass(frozen=True)
class CvChain:
    upper: CvCertificate
    lower: CvCertificate

    def verify(self, center_key: rsa.RSAPublicKey) -> bool:
        """Whether the root is `center_key`, it signs the upper certificate, and the key the
        upper one certifies signs the lower one (whose issuer ID it carries)."""
        return (self.upper.public_key.public_numbers() == center_key.public_numbers()
                and self.upper.signed_by(center_key)
                and self.lower.issuer_key_id == self.upper.subject_key_id
                and self.lower.signed_by(self.upper.public_key))


def parse_chain(upper: bytes, lower: bytes) -> CvChain:
    return CvChain(parse_cv_certificate(upper), parse_cv_certificate(lower))


def parse_card_recognition_data(raw: bytes) -> dict[int, bytes]:
    """0066: `66 { 73 { 06 GP OID, 60.., 63.., ... } }` → the 73 template's objects by tag."""
    outer = tlv.parse_file(raw, 0x66)
    inner = tlv.find(outer.children(), 0x73)
    items = tlv.to_dict(tlv.parse_all(inner))
    if items.get(0x06) != GP_OID:
        raise MalformedData("card recognition data does not carry the GlobalPlatform OID")
    return items
