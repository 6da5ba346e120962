"""Enrolled operators: roles, passwords (argon2id, lockout), login sessions.

The root command (`issuance.cli.main`) asks this package who is acting and whether
their role allows the command (each command declares `roles=` in its set_defaults).
"""

from issuance.operators.errors import OperatorsError
from issuance.operators.roles import ANY, ROLES, allowed, parse_roles
from issuance.operators.sessions import Session, SessionStore
from issuance.operators.store import Operator, OperatorStore

__all__ = ["ANY", "ROLES", "Operator", "OperatorStore", "OperatorsError", "Session",
           "SessionStore", "allowed", "parse_roles"]
