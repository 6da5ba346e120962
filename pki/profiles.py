"""JPKI certificate profiles: the signing certificate (署名用) and the user-authentication
certificate (利用者証明用), built from a holder's RSA public key (the key pair is made on
the card, so there is no CSR).

Builders follow pyca/cryptography: immutable (every setter returns a new builder),
keyword-only options, TypeError for wrong types and ValueError (`ProfileError`, which is
both a ValueError and a PkiError) for values that break a rule.

Signing certificate subjectAltName: one otherName per fact, type-id under
1.2.392.200149.8.5.5, each value a DER UTF8String (encodings in `pki.identity`):
.1 name, .2 name substitute flags, .3 sex code, .4 birth date (YYYYMMDD), .5 address,
.6 address substitute flags. The name and the address are JIS X 0208 text: any other
character is replaced (代替文字) and its flag set by `pki.substitutes` when the identity is
given to a builder.

Validity (jpki-rules 1.5, 1.6): notBefore is the issuance time; notAfter is 23:59:59 JST
on the earliest of the 5th birthday after the issuance date (6th when the certificate is
renewed less than 3 months before the previous one expires) and the card's expiry date;
for signing certificates also no later than the user-authentication certificate's
notAfter when one is given. Dates are JST calendar dates.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from typing import Any, Self

from asn1crypto import core
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID

from pki.certificate_der import (
    EXT_NOT_CA,
    KU_SIGNING,
    KU_USER_AUTH,
    SHA256_WITH_RSA,
    SUBJECT_PREFIX,
    SUBJECT_SUFFIX,
    TBS_VERSION_3,
    Der,
    Encoded,
    IssuerValues,
    distribution_extensions,
    encoded,
    extension,
    issuer_values,
    ocsp_extension,
    subject_key_identifier,
)
from pki.errors import ProfileError
from pki.identity import Identity, nth_birthday_after
from pki.substitutes import substituted_identity

JST = dt.timezone(dt.timedelta(hours=9), "JST")

JPKI_ARC = "1.2.392.200149.8.5"
OID_SIGNING_POLICY = x509.ObjectIdentifier(f"{JPKI_ARC}.1.1.20")
OID_USER_AUTH_POLICY = x509.ObjectIdentifier(f"{JPKI_ARC}.1.3.30")
OID_NAME = x509.ObjectIdentifier(f"{JPKI_ARC}.5.1")
OID_NAME_SUBSTITUTE = x509.ObjectIdentifier(f"{JPKI_ARC}.5.2")
OID_SEX = x509.ObjectIdentifier(f"{JPKI_ARC}.5.3")
OID_BIRTH_DATE = x509.ObjectIdentifier(f"{JPKI_ARC}.5.4")
OID_ADDRESS = x509.ObjectIdentifier(f"{JPKI_ARC}.5.5")
OID_ADDRESS_SUBSTITUTE = x509.ObjectIdentifier(f"{JPKI_ARC}.5.6")

MIN_SIGNING_AGE = 15
MIN_RSA_BITS = 2048
RENEWAL_WINDOW_MONTHS = 3

# What the card holds. pki may not import card, so the card's numbers are repeated here;
# tests/pki/test_pki_limits.py checks them against card.contract.
CARD_RSA_BITS = 2048  # the card's key EFs hold RSA-2048 keys
CARD_RSA_EXPONENT = 65537  # the card generates e = 65537 (F4) only
CARD_CERTIFICATE_EF_BYTES = 3072  # size of the card's certificate EFs (signing, auth)
# The facts go into the signing certificate's subjectAltName, each character as up to 4
# bytes of UTF-8 plus one substitute flag. At these limits the worst case (every
# character 4 bytes, every flag given) stays a few hundred bytes under the EF size with
# the usual CRL and OCSP URLs; the test builds that certificate.
MAX_NAME_CHARS = 100
MAX_ADDRESS_CHARS = 200


def check_card_key(key: object) -> rsa.RSAPublicKey:
    """The holder key as the card makes it: RSA-2048 with e = 65537; else ProfileError
    (a key the card cannot have made is not one to certify for a card)."""
    if not isinstance(key, rsa.RSAPublicKey):
        raise ProfileError(f"jpki-rules 1.10: the key is not an RSA key but "
                           f"{type(key).__name__.removeprefix('_')}; the card holds "
                           f"RSA-{CARD_RSA_BITS}")
    if key.key_size != CARD_RSA_BITS:
        raise ProfileError(f"the key is RSA-{key.key_size}; the card holds RSA-{CARD_RSA_BITS}")
    exponent = key.public_numbers().e
    if exponent != CARD_RSA_EXPONENT:
        shown = exponent if exponent.bit_length() <= 64 else f"a {exponent.bit_length()}-bit value"
        raise ProfileError(f"the key's public exponent is {shown}, not {CARD_RSA_EXPONENT}")
    return key


def check_identity_fits(identity: Identity) -> None:
    """ProfileError when the name or address is longer than the card's certificate EF
    can carry."""
    if len(identity.name) > MAX_NAME_CHARS:
        raise ProfileError(f"the name has {len(identity.name)} characters; the card's "
                           f"certificate holds at most {MAX_NAME_CHARS}")
    if len(identity.address) > MAX_ADDRESS_CHARS:
        raise ProfileError(f"the address has {len(identity.address)} characters; the card's "
                           f"certificate holds at most {MAX_ADDRESS_CHARS}")


class Hierarchy(enum.StrEnum):
    """The CA hierarchies; the value appears in file names and URLs. The two JPKI ones
    (signing, user authentication) and the center's own operator hierarchy, whose
    certificates sit on operator IC cards (no resident ever holds one)."""

    SIGN = "sign"
    AUTH = "auth"
    OPERATOR = "operator"


JPKI_HIERARCHIES = (Hierarchy.SIGN, Hierarchy.AUTH)  # what every CA directory must have


class Profile(enum.StrEnum):
    SIGNING = "signing"
    USER_AUTHENTICATION = "user-authentication"
    OPERATOR = "operator"

    @property
    def hierarchy(self) -> Hierarchy:
        return _PROFILE_HIERARCHIES[self]

    @property
    def policy_oid(self) -> x509.ObjectIdentifier:
        return _PROFILE_POLICIES[self]


# The operator policy is the center's own, not JPKI's: an OID under 2.25 (a UUID, ITU-T
# X.667), so no JPKI relying party can take an operator certificate for a resident's.
OID_OPERATOR_POLICY = x509.ObjectIdentifier("2.25.195938336561233319166034945698220899878")
_PROFILE_HIERARCHIES = {Profile.SIGNING: Hierarchy.SIGN,
                        Profile.USER_AUTHENTICATION: Hierarchy.AUTH,
                        Profile.OPERATOR: Hierarchy.OPERATOR}
_PROFILE_POLICIES = {Profile.SIGNING: OID_SIGNING_POLICY,
                     Profile.USER_AUTHENTICATION: OID_USER_AUTH_POLICY,
                     Profile.OPERATOR: OID_OPERATOR_POLICY}


def end_of_day_jst(day: dt.date) -> dt.datetime:
    """23:59:59 JST on `day`, as UTC."""
    return dt.datetime(day.year, day.month, day.day, 23, 59, 59, tzinfo=JST).astimezone(dt.UTC)


def _months_before(day: dt.date, months: int) -> dt.date:
    month = day.month - months
    year = day.year
    while month < 1:
        month += 12
        year -= 1
    for d in range(day.day, 0, -1):
        try:
            return dt.date(year, month, d)
        except ValueError:
            continue
    raise AssertionError("unreachable")


def validity_period(
    *,
    issued_at: dt.datetime,
    birth_date: dt.date,
    card_expiry: dt.date,
    previous_not_after: dt.datetime | None = None,
    user_certificate_not_after: dt.datetime | None = None,
) -> tuple[dt.datetime, dt.datetime]:
    """(notBefore, notAfter) by jpki-rules 1.5/1.6; see the module docstring."""
    if issued_at.tzinfo is None:
        raise ValueError("issued_at must be timezone-aware")
    not_before = issued_at.astimezone(dt.UTC).replace(microsecond=0)
    today = issued_at.astimezone(JST).date()
    nth = 5
    if previous_not_after is not None:
        prev_end = previous_not_after.astimezone(JST).date()
        if _months_before(prev_end, RENEWAL_WINDOW_MONTHS) <= today <= prev_end:
            nth = 6
    candidates = [
        end_of_day_jst(nth_birthday_after(birth_date, today, nth)),
        end_of_day_jst(card_expiry),
    ]
    if user_certificate_not_after is not None:
        candidates.append(user_certificate_not_after.astimezone(dt.UTC).replace(microsecond=0))
    not_after = min(candidates)
    if not_after <= not_before:
        raise ProfileError("validity would be empty: the card or the user certificate has expired")
    return not_before, not_after


def _utf8(value: str) -> bytes:
    """DER UTF8String."""
    raw = value.encode("utf-8")
    n = len(raw)
    if n < 0x80:
        return b"\x0c" + bytes([n]) + raw
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return b"\x0c" + bytes([0x80 | len(size)]) + size + raw


def identity_general_names(identity: Identity) -> list[x509.GeneralName]:
    """The six otherNames carrying the basic four facts."""
    values = [
        (OID_NAME, identity.name),
        (OID_NAME_SUBSTITUTE, identity.name_substitute),
        (OID_SEX, str(identity.sex)),
        (OID_BIRTH_DATE, identity.birth_date.strftime("%Y%m%d")),
        (OID_ADDRESS, identity.address),
        (OID_ADDRESS_SUBSTITUTE, identity.address_substitute),
    ]
    return [x509.OtherName(oid, _utf8(v)) for oid, v in values]


def identity_from_certificate(cert: x509.Certificate) -> Identity:
    """The basic four facts from a signing certificate's subjectAltName."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise ProfileError("certificate has no subjectAltName: not a signing certificate") from None
    found: dict[x509.ObjectIdentifier, str] = {}
    for name in san.get_values_for_type(x509.OtherName):
        if name.type_id.dotted_string.startswith(JPKI_ARC + ".5."):
            try:
                found[name.type_id] = core.UTF8String.load(name.value).native
            except (ValueError, TypeError) as exc:
                raise ProfileError(f"otherName {name.type_id.dotted_string} is not UTF8String") \
                    from exc
    missing = [o.dotted_string for o in (OID_NAME, OID_SEX, OID_BIRTH_DATE, OID_ADDRESS)
               if o not in found]
    if missing:
        raise ProfileError(f"subjectAltName lacks {', '.join(missing)}")
    try:
        birth = dt.datetime.strptime(found[OID_BIRTH_DATE], "%Y%m%d").date()
        return Identity(
            name=found[OID_NAME],
            name_substitute=found.get(OID_NAME_SUBSTITUTE, ""),
            sex=int(found[OID_SEX]),
            birth_date=birth,
            address=found[OID_ADDRESS],
            address_substitute=found.get(OID_ADDRESS_SUBSTITUTE, ""),
        )
    except ValueError as exc:
        raise ProfileError(f"bad basic-four-facts value in subjectAltName: {exc}") from exc


def certificate_profile(cert: x509.Certificate) -> Profile | None:
    """Which JPKI profile a certificate claims by its policy OID, if any."""
    try:
        policies = cert.extensions.get_extension_for_class(x509.CertificatePolicies).value
    except x509.ExtensionNotFound:
        return None
    oids = {p.policy_identifier for p in policies}
    for profile in Profile:
        if profile.policy_oid in oids:
            return profile
    return None


POLICY_EXTENSIONS = {
    p: encoded(extension(x509.CertificatePolicies([x509.PolicyInformation(p.policy_oid, None)])))
    for p in Profile
}


@dataclasses.dataclass(frozen=True)
class _Options:
    public_key: rsa.RSAPublicKey | None = None
    identity: Identity | None = None
    card_expiry: dt.date | None = None
    previous_not_after: dt.datetime | None = None
    user_certificate_not_after: dt.datetime | None = None
    serial_number: int | None = None
    crl_url: str | None = None
    ocsp_url: str | None = None
    adult_ward: bool = False

    def replace(self, **changes: Any) -> _Options:
        """`dataclasses.replace` without re-running `__init__` (every field is a plain
        value and the builders validate before calling this; issuance speed)."""
        new = object.__new__(_Options)
        new.__dict__.update(self.__dict__)
        new.__dict__.update(changes)
        return new


class _HolderCertificateBuilder:
    profile: Profile

    def __init__(self, *, _options: _Options | None = None) -> None:
        self._o = _options or _Options()

    def _with(self, **changes: Any) -> Self:
        field = next(iter(changes))
        if getattr(self._o, field) is not None:
            raise ValueError(f"{field} may only be set once")
        return type(self)(_options=self._o.replace(**changes))

    def public_key(self, key: rsa.RSAPublicKey) -> Self:
        """The holder's public key (generated on the card); RSA, 2048 bits or more."""
        if not isinstance(key, rsa.RSAPublicKey):
            raise TypeError("public_key must be an RSA public key")
        if key.key_size < MIN_RSA_BITS:
            raise ProfileError(f"jpki-rules 1.10: holder key must be RSA-{MIN_RSA_BITS} or larger")
        return self._with(public_key=key)

    def identity(self, identity: Identity) -> Self:
        """The holder's basic four facts (the birth date sets the validity). A character
        JIS X 0208 cannot show is replaced and flagged in the substitute-flag otherNames
        (`pki.substitutes`; the issuer may have done it already with the holder's
        choices)."""
        if not isinstance(identity, Identity):
            raise TypeError("identity must be a pki.identity.Identity")
        identity = substituted_identity(identity)
        check_identity_fits(identity)
        return self._with(identity=identity)

    def card_expiry(self, day: dt.date) -> Self:
        """The card's expiry date (JST); the certificate never outlives the card."""
        if not isinstance(day, dt.date) or isinstance(day, dt.datetime):
            raise TypeError("card_expiry must be a datetime.date")
        return self._with(card_expiry=day)

    def renewing(self, previous_not_after: dt.datetime) -> Self:
        """This certificate renews one expiring at `previous_not_after` (6th-birthday rule)."""
        if not isinstance(previous_not_after, dt.datetime) or previous_not_after.tzinfo is None:
            raise TypeError("previous_not_after must be a timezone-aware datetime")
        return self._with(previous_not_after=previous_not_after)

    def serial_number(self, number: int) -> Self:
        if not isinstance(number, int) or isinstance(number, bool):
            raise TypeError("serial_number must be an int")
        if number <= 0 or number.bit_length() < 64 or number.bit_length() > 159:
            raise ValueError("serial_number must be positive with 64 to 159 bits")
        return self._with(serial_number=number)

    def distribution(self, *, crl_url: str, ocsp_url: str) -> Self:
        """The certificate's CRL shard URL and the OCSP responder URL."""
        for name, url in (("crl_url", crl_url), ("ocsp_url", ocsp_url)):
            if not isinstance(url, str):
                raise TypeError(f"{name} must be a str")
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"{name} must be an http(s) URL")
        b = self._with(crl_url=crl_url)
        return type(self)(_options=b._o.replace(ocsp_url=ocsp_url))

    def _check_complete(self) -> None:
        missing = [f for f in ("public_key", "identity", "card_expiry", "serial_number",
                               "crl_url", "ocsp_url") if getattr(self._o, f) is None]
        if missing:
            raise ValueError(f"missing {', '.join(missing)}")

    def _extra_checks(self, now: dt.datetime) -> None:
        pass

    def _extra_extensions(self) -> list[tuple[x509.ExtensionType, bool]]:
        return []

    def _key_usage_extension(self) -> Encoded:
        raise NotImplementedError

    def validity(self, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
        o = self._o
        if o.identity is None or o.card_expiry is None:
            raise ValueError("identity and card_expiry are needed for the validity")
        return validity_period(
            issued_at=now,
            birth_date=o.identity.birth_date,
            card_expiry=o.card_expiry,
            previous_not_after=o.previous_not_after,
            user_certificate_not_after=o.user_certificate_not_after,
        )

    def build(self, *, issuer: x509.Certificate, signer: Any, now: dt.datetime) -> x509.Certificate:
        """Sign the certificate with `signer` (the issuing CA's key, usually in the HSM).

        With an RSA signer (every JPKI CA) the TBSCertificate is assembled here from
        DER pieces that are encoded once per issuer, profile and URL, and signed with
        PKCS#1 v1.5 SHA-256; the result is byte for byte what cryptography's
        CertificateBuilder makes (a test checks it), at a fraction of the cost per
        certificate. Other signers go through cryptography's builder."""
        return self.build_der(issuer=issuer, signer=signer, now=now)[0]

    def build_der(self, *, issuer: x509.Certificate, signer: Any,
                  now: dt.datetime) -> tuple[x509.Certificate, bytes]:
        """`build`, and the certificate's DER (which the caller stores)."""
        if not isinstance(issuer, x509.Certificate):
            raise TypeError("issuer must be an x509.Certificate")
        if not isinstance(now, dt.datetime) or now.tzinfo is None:
            raise TypeError("now must be a timezone-aware datetime")
        if isinstance(signer, rsa.RSAPrivateKey):
            der = self._build_rsa_sha256(issuer=issuer, signer=signer, now=now)
            return x509.load_der_x509_certificate(der), der
        cert = self._build_with_cryptography(issuer=issuer, signer=signer, now=now)
        return cert, cert.public_bytes(Encoding.DER)

    def _fields(self, issuer: x509.Certificate, now: dt.datetime
                ) -> tuple[IssuerValues, dt.datetime, dt.datetime, list[Encoded]]:
        self._check_complete()
        self._extra_checks(now)
        o = self._o
        assert o.public_key and o.serial_number and o.crl_url and o.ocsp_url
        not_before, not_after = self.validity(now)
        iv = issuer_values(issuer)
        extensions = [
            EXT_NOT_CA,
            self._key_usage_extension(),
            POLICY_EXTENSIONS[self.profile],
            iv.authority_key_identifier,
            subject_key_identifier(o.public_key),
            distribution_extensions(o.crl_url),
            ocsp_extension(o.ocsp_url),
        ]
        extensions += [encoded(extension(e, critical=c)) for e, c in self._extra_extensions()]
        return iv, not_before, not_after, extensions

    def _build_with_cryptography(self, *, issuer: x509.Certificate, signer: Any,
                                 now: dt.datetime) -> x509.Certificate:
        iv, not_before, not_after, extensions = self._fields(issuer, now)
        o = self._o
        assert o.public_key and o.serial_number
        subject = x509.Name([
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{o.serial_number:040X}"),
        ])
        # One constructor call instead of a chain of add_extension copies.
        b = x509.CertificateBuilder(
            issuer_name=iv.name, subject_name=subject, public_key=o.public_key,
            serial_number=o.serial_number, not_valid_before=not_before,
            not_valid_after=not_after, extensions=[e.extension for e in extensions],
        )
        return b.sign(signer, hashes.SHA256())

    def _build_rsa_sha256(self, *, issuer: x509.Certificate, signer: rsa.RSAPrivateKey,
                          now: dt.datetime) -> bytes:
        tbs = self.tbs_der(issuer=issuer, now=now)
        return assemble_rsa_sha256(tbs, signer.sign(tbs, padding.PKCS1v15(), hashes.SHA256()))

    def tbs_der(self, *, issuer: x509.Certificate, now: dt.datetime) -> bytes:
        """The DER TBSCertificate for sha256WithRSAEncryption (to be signed by the issuer's
        RSA key; `assemble_rsa_sha256` makes the certificate). Lets a caller sign in
        another thread, e.g. while it builds the next certificate."""
        iv, not_before, not_after, extensions = self._fields(issuer, now)
        o = self._o
        assert o.public_key and o.serial_number
        serial = o.serial_number
        return Der.tlv(0x30, b"".join((
            TBS_VERSION_3,
            Der.integer(serial),
            SHA256_WITH_RSA,
            iv.name_der,
            Der.tlv(0x30, Der.time(not_before) + Der.time(not_after)),
            SUBJECT_PREFIX + f"{serial:040X}".encode("ascii") + SUBJECT_SUFFIX,
            o.public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo),
            Der.tlv(0xA3, Der.tlv(0x30, b"".join([e.der for e in extensions]))),
        )))

    def check(self, now: dt.datetime) -> None:
        """Raise what building at `now` would raise for the holder's options (a missing
        key, identity or card expiry; a broken rule, such as a signing certificate for a
        holder under 15) before the serial number and URLs are set, and sign nothing."""
        missing = [f for f in ("public_key", "identity", "card_expiry")
                   if getattr(self._o, f) is None]
        if missing:
            raise ValueError(f"missing {', '.join(missing)}")
        self._extra_checks(now)
        self.validity(now)


def assemble_rsa_sha256(tbs: bytes, signature: bytes) -> bytes:
    """The DER certificate from a TBSCertificate and its PKCS#1 v1.5 SHA-256 signature."""
    return Der.tlv(0x30, tbs + SHA256_WITH_RSA + Der.tlv(0x03, b"\x00" + signature))


class SigningCertificateBuilder(_HolderCertificateBuilder):
    """署名用電子証明書: keyUsage digitalSignature+nonRepudiation, four facts in the SAN."""

    profile = Profile.SIGNING

    def user_certificate_not_after(self, not_after: dt.datetime) -> Self:
        """Cap the validity at the holder's user-authentication certificate's notAfter."""
        if not isinstance(not_after, dt.datetime) or not_after.tzinfo is None:
            raise TypeError("not_after must be a timezone-aware datetime")
        return self._with(user_certificate_not_after=not_after)

    def adult_ward(self, is_ward: bool) -> Self:
        """The holder is an adult ward (成年被後見人): no signing certificate (rule 1.9)."""
        if not isinstance(is_ward, bool):
            raise TypeError("is_ward must be a bool")
        if is_ward:
            return type(self)(_options=self._o.replace(adult_ward=True))
        return self

    def _extra_checks(self, now: dt.datetime) -> None:
        assert self._o.identity is not None
        if self._o.adult_ward:
            raise ProfileError("jpki-rules 1.9: no signing certificate for adult wards")
        today = now.astimezone(JST).date()
        if self._o.identity.age_on(today) < MIN_SIGNING_AGE:
            raise ProfileError(
                "jpki-rules 1.9: no signing certificate for holders under 15 at issuance"
            )

    def _key_usage_extension(self) -> Encoded:
        return KU_SIGNING

    def _extra_extensions(self) -> list[tuple[x509.ExtensionType, bool]]:
        assert self._o.identity is not None
        return [(x509.SubjectAlternativeName(identity_general_names(self._o.identity)), False)]


class UserAuthenticationCertificateBuilder(_HolderCertificateBuilder):
    """利用者証明用電子証明書: keyUsage digitalSignature only, no personal data at all.

    The identity is still needed for the validity (birth date) but is not written.
    """

    profile = Profile.USER_AUTHENTICATION

    def _key_usage_extension(self) -> Encoded:
        return KU_USER_AUTH


def builder_for(profile: Profile) -> _HolderCertificateBuilder:
    """A fresh builder for `profile`."""
    if profile is Profile.SIGNING:
        return SigningCertificateBuilder()
    if profile is Profile.USER_AUTHENTICATION:
        return UserAuthenticationCertificateBuilder()
    raise TypeError("profile must be a pki.profiles.Profile")
