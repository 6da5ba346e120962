"""Storage errors."""

from __future__ import annotations

from issuance.errors import IssuanceError


class StorageError(IssuanceError):
    """The database could not be opened, migrated or used."""


class IntegrityViolation(StorageError):
    """A constraint (unique, foreign key, check) refused a write."""
