"""The personalisation profile: the basic four facts, the holder's PINs and everything
the issuer writes to one card."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from card.formats.values import (
    birth_date_key,
    validate_municipality_code,
    validate_my_number,
    validate_resident_code,
    validate_security_code,
    verification_code_a,
    verification_code_b,
)

# --- Identity data --------------------------------------------------------------

SEX_CODES = {"0": "unknown", "1": "male", "2": "female", "9": "not applicable"}


@dataclass(frozen=True)
class BasicFour:
    """The basic four facts (基本4情報): name, address, birth date, sex (ISO 5218 code)."""

    name: str
    address: str
    birth_date: date
    sex: str

    def __post_init__(self) -> None:
        for attr in ("name", "address", "sex"):
            if not isinstance(getattr(self, attr), str):
                raise TypeError(f"{attr} must be a str")
        if not isinstance(self.birth_date, date):
            raise TypeError("birth_date must be a datetime.date")
        if not self.name or not self.address:
            raise ValueError("name and address must not be empty")
        if self.sex not in SEX_CODES:
            raise ValueError("sex must be one of the ISO 5218 codes 0, 1, 2, 9")



# --- Personalisation profile ----------------------------------------------------


@dataclass(frozen=True)
class HolderPins:
    """PINs set at the counter when the holder is present (express issuance)."""

    jpki_auth: str | None  # needed only with a user-authentication certificate (rule 3.7)
    text: str
    juki: str
    jpki_sign: str | None = None  # needed only with a signing certificate

    def __repr__(self) -> str:  # PINs stay out of logs and tracebacks
        return "HolderPins(<hidden>)"


@dataclass(frozen=True)
class CardIdentity:
    """Everything the issuer writes to one card (the personalisation profile)."""

    my_number: str
    resident_code: str
    facts: BasicFour
    expiry: date
    municipality_code: str
    security_code: str
    with_signing_certificate: bool = True
    with_auth_certificate: bool = True
    photo: bytes | None = None  # the face photo as JPEG 2000; None: a card without photo

    def __post_init__(self) -> None:
        validate_my_number(self.my_number)
        if self.photo is not None and not isinstance(self.photo, bytes):
            raise TypeError("photo must be JPEG 2000 bytes or None")
        validate_resident_code(self.resident_code)
        validate_municipality_code(self.municipality_code)
        validate_security_code(self.security_code)
        if not isinstance(self.facts, BasicFour):
            raise TypeError("facts must be a BasicFour")
        if not isinstance(self.expiry, date):
            raise TypeError("expiry must be a datetime.date")
        if self.with_signing_certificate and not self.with_auth_certificate:
            raise ValueError("a card with a signing certificate has a user-authentication one")

    @property
    def code_a(self) -> str:
        return verification_code_a(self.my_number)

    @property
    def code_b(self) -> str:
        return verification_code_b(self.facts.birth_date, self.expiry, self.security_code)

    @property
    def birth_key(self) -> str:
        return birth_date_key(self.facts.birth_date)

    def __repr__(self) -> str:  # personal data stays out of logs
        return f"CardIdentity(<{self.facts.birth_date.year} holder, expiry {self.expiry}>)"
