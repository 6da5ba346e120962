"""Who is acting: every command needs an operator identity."""

from __future__ import annotations

import os
from collections.abc import Mapping

from issuance.errors import IssuanceError

OPERATOR_ENV = "MYNACARD_OPERATOR"
MAX_LENGTH = 100


class OperatorError(IssuanceError, ValueError):
    """No operator identity, or an unusable one."""


def check_operator(name: str) -> str:
    name = name.strip()
    if not name:
        raise OperatorError("the operator identity is empty")
    if len(name) > MAX_LENGTH:
        raise OperatorError(f"the operator identity is longer than {MAX_LENGTH} characters")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise OperatorError("the operator identity contains control characters")
    return name


def resolve_operator(option: str | None, environ: Mapping[str, str] | None = None) -> str:
    """`--operator NAME`, else `$MYNACARD_OPERATOR`; refuse when neither is set."""
    env = os.environ if environ is None else environ
    value = option if option is not None else env.get(OPERATOR_ENV)
    if value is None:
        raise OperatorError(f"no operator identity: pass --operator NAME or set ${OPERATOR_ENV}")
    return check_operator(value)
