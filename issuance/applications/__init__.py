"""Card applications: intake rules, express issuance, the stored application.

Public API: `ApplicationRequest`, `decide` (pure), `take_application` (store + audit),
`IntakeDecision`, `IntakeRefused`/`Refusal` (with `.rule`), `ExpressReason`, `deadline`,
`card_expiry`, `validity_years`, `is_photo_less`, `signing_certificate_refusal`, `State`.
"""

from issuance.applications.express import ExpressDecision, ExpressReason, deadline
from issuance.applications.intake import IntakeResult, take_application
from issuance.applications.rules import (
    ApplicationRequest,
    ExistingApplication,
    IntakeDecision,
    IntakeRefused,
    Refusal,
    State,
    card_expiry,
    decide,
    is_photo_less,
    signing_certificate_refusal,
    validity_years,
)
from issuance.applications.store import Application

__all__ = [
    "Application",
    "ApplicationRequest",
    "ExistingApplication",
    "ExpressDecision",
    "ExpressReason",
    "IntakeDecision",
    "IntakeRefused",
    "IntakeResult",
    "Refusal",
    "State",
    "card_expiry",
    "deadline",
    "decide",
    "is_photo_less",
    "signing_certificate_refusal",
    "take_application",
    "validity_years",
]
