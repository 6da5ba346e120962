"""The root of every error the issuance center raises."""

from __future__ import annotations


class IssuanceError(Exception):
    """Root exception of the `issuance` package."""
