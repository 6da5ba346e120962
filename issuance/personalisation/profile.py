"""The personalisation profile of a card, from the registry record and the application."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from card import images
from card.formats import BasicFour, CardIdentity
from issuance.applications.rules import card_expiry, is_photo_less
from issuance.applications.store import Application
from issuance.registry.model import FuhyoEntry, Resident, ResidentStatus
from pki.identity import Identity
from pki.substitutes import substituted_identity


def municipality5(code: str) -> str:
    """The card's 5-digit municipality code (the registry's 6-digit code less its check
    digit)."""
    if len(code) not in (5, 6) or not code.isdigit():
        raise ValueError("a municipality code is 5 or 6 digits")
    return code[:5]


def identity_of(resident: Resident, substitutions: Mapping[str, str] | None = None
                ) -> Identity:
    """The basic four facts as the signing certificate carries them: from the 住民票, or
    for an emigrant recorded in a 附票 from the 附票 items (rule 1.4), whose address is the
    address abroad and the 附票管理市町村 (`fuhyo_address`); a character JIS X 0208 cannot
    show replaced (the holder's choice in `substitutions`, else the standard form or 〓)
    and flagged (`pki.substitutes`)."""
    address = resident.address
    if resident.status is ResidentStatus.EMIGRATED and resident.fuhyo is not None:
        address = fuhyo_address(resident.fuhyo)
    return substituted_identity(
        Identity(name=resident.name, birth_date=resident.birth_date, sex=int(resident.sex),
                 address=address), substitutions)


def fuhyo_address(entry: FuhyoEntry) -> str:
    """An emigrant's address as the 附票 records it: the place abroad (国外 when the 附票
    names none) and the municipality that keeps the 附票. The J-LIS form for it is not
    public (rule 1.4, unconfirmed); this one keeps both items readable."""
    abroad = (entry.address_abroad or "").strip() or "国外"
    return f"{abroad}（附票管理市町村 {municipality5(entry.municipality_code)}）"


def card_identity(resident: Resident, application: Application, *, issued_on: date,
                  security_code: str, certificates: bool = True,
                  photo: bytes | None = None) -> CardIdentity:
    """Everything written to the card. The card expires on the 10th (adult) or 5th
    birthday after issuance, capped at a foreign resident's end of stay (rule 4.4).

    The face photo is `photo` (the applicant's image, any format Pillow reads) as JPEG
    2000, or a portrait drawn from the resident code for a synthetic resident; none for
    anyone under 1 on the application date (rule 4.5)."""
    expiry = card_expiry(resident.birth_date, application.applied_on, issued_on,
                         residence_expiry=resident.residence_expiry)
    auth = certificates and application.user_certificate
    sign = auth and application.signing_certificate
    return CardIdentity(
        my_number=resident.my_number,
        resident_code=resident.resident_code,
        facts=BasicFour(name=resident.name, address=resident.address,
                        birth_date=resident.birth_date, sex=str(int(resident.sex))),
        expiry=expiry,
        municipality_code=municipality5(resident.municipality_code),
        security_code=security_code,
        with_signing_certificate=sign,
        with_auth_certificate=auth,
        photo=card_photo(resident, application, photo),
    )


def card_photo(resident: Resident, application: Application,
               photo: bytes | None = None) -> bytes | None:
    """The JPEG 2000 face photo for the card, or None for a photo-less card (rule 4.5)."""
    if is_photo_less(resident.birth_date, application.applied_on):
        return None
    if photo is not None:
        return images.photo_from_file(photo)
    return images.generated_portrait(resident.resident_code)
