"""The card surface written by the issuance center: the applicant's photo when one was given
with the application, a drawn portrait otherwise, none for an infant (rule 4.5); the face
signed by the center's integrity key in the HSM."""

from __future__ import annotations

import io

from PIL import Image
from workflow_support import OPERATOR, apply, pins, resident

from card import formats, images
from card.surface import SurfaceClient
from card.transport import PcscTransport
from issuance.applications.photos import photo_of, put_photo
from issuance.storage import Database
from issuance.workflow.activate import Activator
from issuance.workflow.center import Center
from issuance.workflow.issue import Issuer


def _face(db: Database, reader: str,
          my_number: str) -> tuple[formats.CardFace, formats.CvCertificate]:
    """Activate the issued card (code A works on an active card) and read the face."""
    Activator(db, operator=OPERATOR).activate(reader, pins)
    with PcscTransport(reader) as t:
        surface = SurfaceClient(t)
        surface.verify_code_a(my_number)
        return surface.card_face(), surface.cv_certificate()


def test_the_applicants_photo_reaches_the_card(db: Database, center: Center,
                                               blank_card: str) -> None:
    person = resident(40)
    app = apply(db, person)
    given = Image.new("RGB", (300, 400), (200, 180, 160))
    given.paste((40, 40, 40), (100, 80, 200, 220))
    raw = io.BytesIO()
    given.save(raw, "JPEG")
    photo = images.photo_from_file(raw.getvalue())
    put_photo(db, app, photo)
    assert photo_of(db, app) == photo
    Issuer(db, center, operator=OPERATOR).issue(app, blank_card)
    face, cert = _face(db, blank_card, person.my_number)
    assert face.photo == photo
    assert face.photo != images.generated_portrait(person.resident_code)
    assert cert.public_key == center.integrity_signer.public_key()
    assert face.verify(center.integrity_signer.public_key())


def test_an_infant_card_has_no_photo(db: Database, center: Center, blank_card: str) -> None:
    infant = resident(months=5)
    app = apply(db, infant, signing=False)
    assert photo_of(db, app) is None
    Issuer(db, center, operator=OPERATOR).issue(app, blank_card)
    face, cert = _face(db, blank_card, infant.my_number)
    assert face.photo is None
    assert face.verify(cert.public_key)
