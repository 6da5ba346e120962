"""The issuer's client: authentication with the per-card issuer key, personalisation,
life cycle and PIN resets at the counter.

The issuer key never has to be on the host: `IssuerClient.authenticate` takes any
object with `respond(serial, challenge) -> cryptogram`, so the derivation can run in
an HSM. `HostIssuerAuthenticator` does it on the host for tests and the emulator.

The other way round, `IssuerClient.key_attestation` has the card prove that a key was
generated in its own slot (card/attestation.py); `personalise` hands that attestor to
the certificate issuer, which must check it before certifying anything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from card import contract, formats, images
from card.apdu import command, extended_command
from card.attestation import ATTESTED_KEYS, KeyAttestation, KeyAttestor
from card.contract import Ins, LifeCycle, PinBit, Tag
from card.formats import CardIdentity, HolderPins, validate_pin
from card.jpki import rsa_public_key
from card.session import WRITE_CHUNK, Channel, channel_for, select_ef_apdu
from card.tlv import MalformedData
from card.transport import Transport

# The resident-registry PIN the holder chooses is stored twice, as two key references that
# are set, reset and blocked on their own: 住基AP EF 001C and 共通カードAP EF 001C.
JUKI_PIN_REFERENCES: tuple[tuple[contract.AreaSpec, int, PinBit], ...] = (
    (contract.JUKI, contract.JUKI_PIN, PinBit.JUKI),
    (contract.COMMON, contract.COMMON_PIN, PinBit.COMMON),
)


def pin_references(area: contract.AreaSpec, fid: int) -> list[tuple[contract.AreaSpec, int]]:
    """Every key reference that holds the holder PIN `area`/`fid`: both copies of the
    resident-registry PIN, otherwise the PIN itself."""
    pairs = [(a, f) for a, f, _bit in JUKI_PIN_REFERENCES]
    return pairs if (area, fid) in pairs else [(area, fid)]


class IssuerAuthenticator(Protocol):
    """Answers the card's issuer-authentication challenge (host, HSM or remote service)."""

    def respond(self, serial: str, challenge: bytes) -> bytes: ...


def derive_card_key(master_key: bytes, serial: str) -> bytes:
    """card key = AES-128-ECB(master key, serial (15 ASCII digits) || 0x80)."""
    if len(serial) != contract.SERIAL_LENGTH or not serial.isdigit():
        raise ValueError("a card serial is 15 digits")
    encryptor = Cipher(algorithms.AES(master_key), modes.ECB()).encryptor()
    return encryptor.update(serial.encode("ascii") + b"\x80") + encryptor.finalize()


def issuer_cryptogram(card_key: bytes, challenge: bytes) -> bytes:
    """AES-CMAC (RFC 4493) of the challenge under the card key."""
    mac = cmac.CMAC(algorithms.AES(card_key))
    mac.update(challenge)
    return mac.finalize()


class HostIssuerAuthenticator:
    """Derives the card key from a master key held in memory (tests, emulator, demos)."""

    def __init__(self, master_key: bytes) -> None:
        if not isinstance(master_key, (bytes, bytearray)):
            raise TypeError("the master key is bytes")
        if len(master_key) != 16:
            raise ValueError("the master key is an AES-128 key (16 bytes)")
        self._master_key = bytes(master_key)

    def __repr__(self) -> str:
        return "HostIssuerAuthenticator(<key hidden>)"

    def respond(self, serial: str, challenge: bytes) -> bytes:
        if len(challenge) != contract.ISSUER_CHALLENGE_LENGTH:
            raise ValueError("the issuer challenge is 16 bytes")
        return issuer_cryptogram(derive_card_key(self._master_key, serial), challenge)


@dataclass(frozen=True)
class PinStatus:
    """Card-wide holder-PIN bits (GET DATA DF72): which PINs are required and which set."""

    required: frozenset[PinBit]
    set: frozenset[PinBit]

    @classmethod
    def from_bytes(cls, raw: bytes) -> PinStatus:
        if len(raw) != 2:
            raise MalformedData("PIN status is 2 bytes")
        return cls(
            frozenset(b for b in PinBit if raw[0] & b), frozenset(b for b in PinBit if raw[1] & b)
        )


# (auth public key, sign public key, the card's attestor) ->
#     (sign cert, auth cert, sign CA cert, auth CA cert)
# The attestor answers ATTEST KEY for a key FID and a challenge of the certifier's choosing;
# a certifier checks it (card.attestation.AttestationGate) before it certifies a key.
CertificateIssuer = Callable[
    [rsa.RSAPublicKey | None, rsa.RSAPublicKey | None, KeyAttestor],
    tuple[x509.Certificate | None, x509.Certificate | None, x509.Certificate | None,
          x509.Certificate | None],
]


@dataclass(frozen=True)
class PersonalisationResult:
    serial: str
    auth_public_key: rsa.RSAPublicKey | None
    sign_public_key: rsa.RSAPublicKey | None
    auth_certificate: x509.Certificate | None
    sign_certificate: x509.Certificate | None
    life_cycle: LifeCycle


def card_manager_serial(channel: Channel) -> str:
    """The 15-digit serial (GET DATA 0045 on the card manager)."""
    channel.select_application(contract.AID_CARD_MANAGER)
    raw = channel.send(command(contract.CLA_ISO, Ins.GET_DATA, 0x00, Tag.CARD_SERIAL, le=256))
    serial = raw.decode("ascii", "replace")
    if len(serial) != contract.SERIAL_LENGTH or not serial.isdigit():
        raise MalformedData("the card serial is not 15 digits")
    return serial


def external_authenticate(
    channel: Channel, serial: str, authenticator: IssuerAuthenticator
) -> None:
    """GET CHALLENGE (16) + EXTERNAL AUTHENTICATE in the currently selected application."""
    challenge = channel.send(
        command(contract.CLA_ISO, Ins.GET_CHALLENGE, 0, 0, le=contract.ISSUER_CHALLENGE_LENGTH)
    )
    cryptogram = authenticator.respond(serial, challenge)
    channel.send(command(contract.CLA_ISO, Ins.EXTERNAL_AUTHENTICATE, 0, 0, bytes(cryptogram)))


def write_current_ef(channel: Channel, data: bytes, offset: int = 0) -> None:
    """UPDATE BINARY the current EF in chunks of at most 255 bytes."""
    position = 0
    while position < len(data):
        chunk = data[position : position + WRITE_CHUNK]
        at = offset + position
        if at > 0x7FFF:
            raise ValueError("UPDATE BINARY offsets are 15 bits")
        channel.send(command(contract.CLA_ISO, Ins.UPDATE_BINARY, at >> 8, at & 0xFF, chunk))
        position += len(chunk)


def set_reference_apdu(value: bytes | None) -> bytes:
    """`00 2C 02 80 Lc value` (new value) or `00 2C 03 80` (counter only)."""
    if value is None:
        return command(contract.CLA_ISO, Ins.RESET_RETRY_COUNTER, contract.RESET_P1_COUNTER_ONLY,
                       contract.P2_CURRENT_KEY)
    return command(contract.CLA_ISO, Ins.RESET_RETRY_COUNTER, contract.RESET_P1_NEW_VALUE,
                   contract.P2_CURRENT_KEY, value)


class IssuerClient:
    """Issuer operations over the card manager and the four areas."""

    def __init__(self, transport: Transport | Channel) -> None:
        self.channel = channel_for(transport)

    # --- card manager -------------------------------------------------------------

    def serial(self) -> str:
        return card_manager_serial(self.channel)

    def get_data(self, tag: int) -> bytes:
        self.channel.select_application(contract.AID_CARD_MANAGER)
        return self.channel.send(
            command(contract.CLA_ISO, Ins.GET_DATA, tag >> 8, tag & 0xFF, le=256)
        )

    def life_cycle(self) -> LifeCycle:
        return LifeCycle(self.get_data(Tag.LIFE_CYCLE)[0])

    def pin_status(self) -> PinStatus:
        return PinStatus.from_bytes(self.get_data(Tag.PIN_STATUS))

    def authenticate(self, authenticator: IssuerAuthenticator) -> str:
        """Issuer authentication on the card manager (card-wide until reset); the serial."""
        serial = self.serial()
        external_authenticate(self.channel, serial, authenticator)
        return serial

    def put_data(self, tag: int, data: bytes) -> None:
        """PUT DATA on the card manager; an object over 255 bytes goes in the extended form."""
        self.channel.select_application(contract.AID_CARD_MANAGER)
        encode = command if len(data) <= 255 else extended_command
        self.channel.send(encode(contract.CLA_ISO, Ins.PUT_DATA, tag >> 8, tag & 0xFF, data))

    def set_state(self, state: LifeCycle) -> None:
        self.channel.select_application(contract.AID_CARD_MANAGER)
        self.channel.send(command(contract.CLA_PROPRIETARY, Ins.SET_STATUS, 0x80, int(state)))

    def terminate(self) -> None:
        """Abolish the card: afterwards only SELECT and GET DATA answer."""
        self.set_state(LifeCycle.TERMINATED)

    # --- areas --------------------------------------------------------------------

    def _select_ef(self, area: contract.AreaSpec, fid: int) -> None:
        self.channel.select_application(area.aid)
        self.channel.send(select_ef_apdu(fid))

    def write_record(self, area: contract.AreaSpec, fid: int, number: int, data: bytes) -> None:
        """UPDATE RECORD `number` of a record EF (the record's full length)."""
        spec = area.file(fid)
        if not spec.record_length:
            raise ValueError(f"{spec.name} is not a record file")
        if len(data) != spec.record_length:
            raise ValueError(f"a record of {spec.name} is {spec.record_length} bytes")
        self._select_ef(area, fid)
        self.channel.send(command(contract.CLA_ISO, Ins.UPDATE_RECORD, number,
                                  contract.RECORD_P2_BY_NUMBER, data))

    def write_file(self, area: contract.AreaSpec, fid: int, data: bytes) -> None:
        """Write `data` at the start of a data EF (the rest keeps its filler)."""
        spec = area.file(fid)
        if len(data) > spec.size:
            raise ValueError(f"{spec.name} holds at most {spec.size} bytes")
        self._select_ef(area, fid)
        write_current_ef(self.channel, data)

    def generate_key(self, key_fid: int,
                     area: contract.AreaSpec = contract.JPKI) -> rsa.RSAPublicKey:
        """Generate an RSA-2048 key pair on the card in a key EF (JPKI unless `area` says
        otherwise); the public key."""
        self._select_ef(area, key_fid)
        modulus = self.channel.send(
            command(contract.CLA_ISO, Ins.GENERATE_KEY, contract.GENERATE_P1_GENERATE, 0, le=256)
        )
        return rsa_public_key(modulus)

    def read_public_key(self, key_fid: int,
                        area: contract.AreaSpec = contract.JPKI) -> rsa.RSAPublicKey:
        self._select_ef(area, key_fid)
        modulus = self.channel.send(
            command(contract.CLA_ISO, Ins.GENERATE_KEY, contract.GENERATE_P1_READ_PUBLIC, 0,
                    le=256)
        )
        return rsa_public_key(modulus)

    def attest_key(self, key_fid: int, challenge: bytes) -> bytes:
        """ATTEST KEY: the card's 16-byte MAC over the public key in JPKI slot `key_fid`."""
        if key_fid not in ATTESTED_KEYS:
            raise ValueError(f"key {key_fid:04X} is not a JPKI key the card attests")
        if len(challenge) != contract.KEY_ATTESTATION_CHALLENGE_LENGTH:
            raise ValueError("the attestation challenge is 16 bytes")
        self.channel.select_application(contract.AID_JPKI)
        mac = self.channel.send(command(
            contract.CLA_PROPRIETARY, Ins.ATTEST_KEY, contract.KEY_ATTESTATION_P1,
            contract.P2_CURRENT_KEY | (key_fid & 0x1F), bytes(challenge), le=256))
        if len(mac) != contract.KEY_ATTESTATION_MAC_LENGTH:
            raise MalformedData("an attestation MAC is 16 bytes")
        return mac

    def key_attestation(self, key_fid: int, challenge: bytes) -> KeyAttestation:
        """The card's evidence for the key in slot `key_fid`: serial, key and MAC."""
        serial = self.serial()
        public_key = self.read_public_key(key_fid)
        mac = self.attest_key(key_fid, challenge)
        return KeyAttestation(serial=serial, aid=contract.AID_JPKI, key_fid=key_fid,
                              public_key=public_key, challenge=bytes(challenge), mac=mac)

    def set_reference_data(self, area: contract.AreaSpec, fid: int, value: str) -> None:
        """Set a PIN or code (format checked here and on the card)."""
        data = validate_pin(area.pin(fid), value)
        self._select_ef(area, fid)
        self.channel.send(set_reference_apdu(data))

    def reset_pin(self, area: contract.AreaSpec, fid: int, new: str | None = None) -> None:
        """Reset a (blocked) PIN at the counter: new value, or only the counter if None."""
        data = None if new is None else validate_pin(area.pin(fid), new)
        self._select_ef(area, fid)
        self.channel.send(set_reference_apdu(data))

    # --- the whole job ------------------------------------------------------------

    def personalise(
        self,
        profile: CardIdentity,
        *,
        authenticator: IssuerAuthenticator,
        issue_certificates: CertificateIssuer,
        integrity_signer: rsa.RSAPrivateKey,
        holder_pins: HolderPins | None = None,
    ) -> PersonalisationResult:
        """Personalise a blank card and issue it.

        Writes every area's data, generates the holder keys on the card, has
        `issue_certificates` certify the public keys (it gets `key_attestation` to have
        the card prove the keys are its own), writes the certificates, token
        info and availability, the integrity record signed by `integrity_signer`, the
        verification codes, then moves the card personalised → issued. With
        `holder_pins` (express issuance) the holder PINs are set too, and the card
        becomes active at issue.

        The issuer authentication lasts until the card is reset: close the connection
        (PcscTransport resets the card) before handing the card over.
        """
        if not isinstance(profile, CardIdentity):
            raise TypeError("profile must be a CardIdentity")
        if holder_pins is not None:
            _check_holder_pins(profile, holder_pins)
        serial = self.authenticate(authenticator)

        self.put_data(Tag.MUNICIPALITY_CODE, profile.municipality_code.encode("ascii"))
        self.put_data(Tag.EXPIRY, formats.yyyymmdd(profile.expiry))

        # Card-info input support: My Number, four facts, integrity record, codes A and B.
        mn_file = formats.my_number_file(profile.my_number)
        bf_file = formats.basic_four_file(profile.facts)
        self.write_file(contract.TEXT, contract.TEXT_MY_NUMBER, mn_file)
        self.write_file(contract.TEXT, contract.TEXT_BASIC_FOUR, bf_file)
        self.write_file(contract.TEXT, contract.TEXT_INTEGRITY,
                        formats.integrity_record(mn_file, bf_file, integrity_signer))
        text_cv = formats.text_cv_certificate(integrity_signer)
        self.write_file(contract.TEXT, contract.TEXT_CV_CERT, text_cv)
        self.write_file(contract.TEXT, contract.TEXT_AP_BASIC, formats.text_basic_file(text_cv))
        self.set_reference_data(contract.TEXT, contract.TEXT_CODE_A, profile.code_a)
        self.set_reference_data(contract.TEXT, contract.TEXT_CODE_B, profile.code_b)

        # Resident registry and the common card application (共通カードAP): the card's
        # internal-authentication key, its key reference in both, the card-info record,
        # and the MF-level objects that certify the key.
        self.write_file(contract.JUKI, contract.JUKI_RESIDENT_CODE,
                        formats.resident_code_file(profile.resident_code))
        self.personalise_common(serial, profile, integrity_signer)

        # JPKI: keys on the card, certificates from the CA.
        auth_pub, sign_pub, auth_cert, sign_cert = self.personalise_jpki(
            serial, auth=profile.with_auth_certificate, sign=profile.with_signing_certificate,
            issue_certificates=issue_certificates)
        self.personalise_surface(profile, auth_pub or sign_pub, integrity_signer)
        self.personalise_text_keys(auth_pub or sign_pub, integrity_signer)

        if holder_pins is not None:
            self.set_holder_pins(profile, holder_pins)

        if self.life_cycle() == LifeCycle.BLANK:
            self.set_state(LifeCycle.PERSONALISED)
        self.set_state(LifeCycle.ISSUED)
        return PersonalisationResult(
            serial=serial,
            auth_public_key=auth_pub,
            sign_public_key=sign_pub,
            auth_certificate=auth_cert,
            sign_certificate=sign_cert,
            life_cycle=self.life_cycle(),
        )

    def personalise_jpki(
        self, serial: str, *, auth: bool, sign: bool, issue_certificates: CertificateIssuer,
    ) -> tuple[rsa.RSAPublicKey | None, rsa.RSAPublicKey | None, x509.Certificate | None,
               x509.Certificate | None]:
        """The JPKI application's part of personalisation (issuer authenticated): generate
        the asked-for keys on the card, have `issue_certificates` certify them (it gets
        `key_attestation`, so the card proves each key is its own), write the
        certificates, the CA certificates given, token info and availability. Shared by
        a resident's card (`personalise`) and an operator IC card (user-authentication
        key only). Returns (auth key, sign key, auth certificate, sign certificate)."""
        auth_pub = self.generate_key(contract.JPKI_AUTH_KEY) if auth else None
        sign_pub = self.generate_key(contract.JPKI_SIGN_KEY) if sign else None
        sign_cert, auth_cert, sign_ca, auth_ca = issue_certificates(auth_pub, sign_pub,
                                                                    self.key_attestation)
        if sign and sign_cert is None:
            raise ValueError("the profile asks for a signing certificate and none was issued")
        if auth and auth_cert is None:
            raise ValueError("the profile asks for an authentication certificate; none issued")
        for fid, cert, pub in (
            (contract.JPKI_SIGN_CERT, sign_cert, sign_pub),
            (contract.JPKI_AUTH_CERT, auth_cert, auth_pub),
        ):
            if cert is None:
                continue
            if pub is None or cert.public_key() != pub:
                raise ValueError("a certificate does not certify the key generated on the card")
            self.write_file(contract.JPKI, fid, _der(cert))
        for fid, ca in ((contract.JPKI_SIGN_CA_CERT, sign_ca),
                        (contract.JPKI_AUTH_CA_CERT, auth_ca)):
            if ca is not None:
                self.write_file(contract.JPKI, fid, _der(ca))
        self.write_file(contract.JPKI, contract.JPKI_TOKEN_INFO, formats.token_info(serial=serial))
        self.write_file(contract.JPKI, contract.JPKI_CERT_AVAILABILITY,
                        formats.cert_availability_file(sign=sign_cert is not None,
                                                       auth=auth_cert is not None))
        return auth_pub, sign_pub, auth_cert, sign_cert

    def personalise_common(self, serial: str, profile: CardIdentity,
                           signer: rsa.RSAPrivateKey) -> rsa.RSAPublicKey:
        """共通カードAP and the MF level: generate the EF 0019 key, write its key reference
        (住基AP and 共通カードAP EF 0002), the card-info record, and the MF objects (issuer ID,
        key ID, the CV certificates 00F8 and 7F21, the latter certifying that key). The key."""
        card_key = self.generate_key(contract.COMMON_AUTH_KEY, contract.COMMON)
        reference = formats.key_reference(card_key)
        self.write_file(contract.JUKI, contract.JUKI_KEY_REFERENCE, reference)
        self.write_file(contract.COMMON, contract.COMMON_KEY_REFERENCE, reference)
        self.write_record(contract.COMMON, contract.COMMON_CARD_INFO, 1,
                          formats.card_info_record(serial, profile.municipality_code,
                                                   profile.expiry))
        for tag, value in formats.mf_objects(signer, card_key).by_tag().items():
            self.put_data(tag, value)
        return card_key

    def personalise_surface(self, profile: CardIdentity, card_key: rsa.RSAPublicKey | None,
                            signer: rsa.RSAPrivateKey) -> None:
        """Card surface: age record, card face and My Number image (rendered images, signed
        by `signer`, whose key EF 0004 certifies), basic data, birth-date key and codes.

        `card_key` is the card's own public key the face and the image carry (the JPKI
        authentication key); it is not the signing key.
        """
        self.write_file(contract.SURFACE, contract.SURFACE_AGE_RECORD,
                        formats.age_record_file(profile.facts.birth_date, card_key, signer))
        self.write_file(contract.SURFACE, contract.SURFACE_FACE, formats.card_face_file(
            profile.facts, profile.expiry,
            name_image=images.name_image(profile.facts.name),
            address_image=images.address_image(profile.facts.address),
            photo=profile.photo,
            security_code_image=images.security_code_image(profile.security_code),
            card_public_key=card_key, signer=signer))
        self.write_file(contract.SURFACE, contract.SURFACE_AP_BASIC,
                        formats.surface_basic_file(profile.municipality_code, signer))
        self.write_file(contract.SURFACE, contract.SURFACE_CV_CERT,
                        formats.surface_cv_certificate(signer))
        self.write_file(contract.SURFACE, contract.SURFACE_MY_NUMBER_IMAGE,
                        formats.my_number_image_file(images.my_number_image(profile.my_number),
                                                     card_key, signer))
        self.set_reference_data(contract.SURFACE, contract.SURFACE_BIRTH_KEY, profile.birth_key)
        self.set_reference_data(contract.SURFACE, contract.SURFACE_CODE_B, profile.code_b)
        self.set_reference_data(contract.SURFACE, contract.SURFACE_CODE_A, profile.code_a)

    def personalise_text_keys(self, card_key: rsa.RSAPublicKey | None,
                              signer: rsa.RSAPrivateKey) -> None:
        """Text EFs 0006 (session-key encryption key) and 0007 (the card key signed by
        `signer`, the key text EF 0004 certifies). mynacard's text area has no key of its
        own: both carry the card key the surface files carry (the JPKI authentication key).
        These EFs are outside the AreaSpec (no client reads them), so they are written here
        directly; without a card key they keep their filler."""
        if card_key is None:
            return
        for fid, data, size in (
            (contract.TEXT_SESSION_KEY, formats.session_key_file(card_key),
             contract.TEXT_SESSION_KEY_SIZE),
            (contract.TEXT_CARD_KEY, formats.signed_card_key_file(card_key, signer),
             contract.TEXT_CARD_KEY_SIZE),
        ):
            if len(data) > size:
                raise ValueError(f"text EF {fid:04X} holds at most {size} bytes")
            self._select_ef(contract.TEXT, fid)
            write_current_ef(self.channel, data)

    def set_holder_pins(self, profile: CardIdentity, pins: HolderPins) -> None:
        """Set the holder PINs the card will require (express issuance)."""
        _check_holder_pins(profile, pins)
        if profile.with_auth_certificate and pins.jpki_auth is not None:
            self.set_reference_data(contract.JPKI, contract.JPKI_AUTH_PIN, pins.jpki_auth)
        if profile.with_signing_certificate and pins.jpki_sign is not None:
            self.set_reference_data(contract.JPKI, contract.JPKI_SIGN_PIN, pins.jpki_sign)
        self.set_reference_data(contract.TEXT, contract.TEXT_PIN, pins.text)
        for area, fid, _bit in JUKI_PIN_REFERENCES:  # one holder PIN, two key references
            self.set_reference_data(area, fid, pins.juki)


def _check_holder_pins(profile: CardIdentity, pins: HolderPins) -> None:
    if not isinstance(pins, HolderPins):
        raise TypeError("holder_pins must be a HolderPins")
    if profile.with_auth_certificate:  # without certificates: no JPKI PIN (rule 3.7)
        if pins.jpki_auth is None:
            raise ValueError("a card with a user-authentication certificate needs its PIN")
        validate_pin(contract.JPKI.pin(contract.JPKI_AUTH_PIN), pins.jpki_auth)
    validate_pin(contract.TEXT.pin(contract.TEXT_PIN), pins.text)
    validate_pin(contract.JUKI.pin(contract.JUKI_PIN), pins.juki)
    if profile.with_signing_certificate:
        if pins.jpki_sign is None:
            raise ValueError("a card with a signing certificate needs a signing password")
        validate_pin(contract.JPKI.pin(contract.JPKI_SIGN_PIN), pins.jpki_sign)


def _der(cert: x509.Certificate) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding

    return cert.public_bytes(Encoding.DER)
