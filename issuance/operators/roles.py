"""The operator roles and the check of a command's `roles=` declaration.

- clerk: the counter (applications, issuing and activating cards, registry, notices).
- supervisor: what a clerk may do, plus enrolling operators and hand revocation.
- ca-officer: the CA and the HSM (key ceremony, certificates, CRLs, relying parties).
- auditor: reads only (read-only commands are open to every role).
"""

from __future__ import annotations

from collections.abc import Iterable

from issuance.operators.errors import OperatorsError

ROLES = ("clerk", "supervisor", "ca-officer", "auditor")
ANY = "*"  # a command any authenticated operator may run


def parse_roles(text: str | Iterable[str]) -> tuple[str, ...]:
    """Roles from `clerk,supervisor` or a list; refuse an unknown one."""
    items = text.split(",") if isinstance(text, str) else list(text)
    out: list[str] = []
    for item in (i.strip() for i in items):
        if item not in ROLES:
            raise OperatorsError(f"unknown role {item!r} (roles: {', '.join(ROLES)})")
        if item not in out:
            out.append(item)
    if not out:
        raise OperatorsError("an operator needs at least one role")
    return tuple(out)


def declared(value: object) -> tuple[str, ...] | None:
    """A command's `roles=` declaration as a tuple (None when it declares none or an
    unusable one)."""
    if value == ANY:
        return (ANY,)
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, tuple | list) or not value:
        return None
    if any(v not in ROLES for v in value):
        return None
    return tuple(str(v) for v in value)


def allowed(held: Iterable[str], needed: Iterable[str]) -> bool:
    """Whether an operator holding `held` may run a command that needs `needed`."""
    need = tuple(needed)
    return ANY in need or bool(set(held) & set(need))
