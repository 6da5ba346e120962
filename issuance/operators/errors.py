"""The errors of operator enrolment and authentication."""

from issuance.errors import IssuanceError


class OperatorsError(IssuanceError):
    """An operator rule refused, or an operator cannot be authenticated."""
