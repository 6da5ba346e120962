"""Who is acting: every command that changes anything needs an authenticated operator.

The root command authenticates the operator (a login session, see `issuance.operators`)
or, in development mode only, takes the claimed `--operator NAME` / `$MYNACARD_OPERATOR`.
It then installs the identity with `acting(...)`, so every audit entry written during the
command records the role the operator acted in ("development" for a claimed identity).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from issuance.errors import IssuanceError

OPERATOR_ENV = "MYNACARD_OPERATOR"
DEVELOPMENT_ENV = "MYNACARD_DEVELOPMENT"
DEVELOPMENT_ROLE = "development"
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


def development_mode(environ: Mapping[str, str] | None = None) -> bool:
    """`$MYNACARD_DEVELOPMENT=1`: a claimed operator name is taken without a login."""
    env = os.environ if environ is None else environ
    return env.get(DEVELOPMENT_ENV, "") == "1"


@dataclass(frozen=True)
class Acting:
    """The operator the root command authenticated, and the role(s) they act in."""

    operator: str
    role: str  # comma-separated roles, or DEVELOPMENT_ROLE


# A context variable, not a global: the console (issuance/console/) serves several
# operators at once, each request and job in its own thread and context.
_acting: ContextVar[Acting | None] = ContextVar("mynacard_acting", default=None)


@contextmanager
def acting(who: Acting | None) -> Iterator[Acting | None]:
    """Install `who` for every audit entry written inside the block."""
    token = _acting.set(who)
    try:
        yield who
    finally:
        _acting.reset(token)


def acting_role(operator: str) -> str | None:
    """The role recorded for an entry by `operator`: the installed one when it is theirs."""
    current = _acting.get()
    if current is not None and current.operator == operator:
        return current.role
    return None


def become(who: Acting) -> None:
    """Replace the installed identity for the rest of the command (a login that just
    proved `who`'s credential records the roles it proved)."""
    if _acting.get() is None:
        raise OperatorError("no command is running")
    _acting.set(who)
