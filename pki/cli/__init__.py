"""`mynacard ca|crl|ocsp|verify`: the JPKI CA from the command line.

State lives under the state directory (``--home``): ``ca/`` (public certificates and
``ca.json``), ``store.sqlite`` (or ``--db postgresql://…``), the SoftHSM2 token under
``hsm/``. PINs come only from pin sources (``env:NAME`` or ``file:PATH``), never from
the command line, and are never printed.

The commands live in one module per group: `pki.cli.ca`, `pki.cli.crl`, `pki.cli.ocsp`,
`pki.cli.verify`; what they share in `pki.cli.common`.
"""

from __future__ import annotations

from typing import Any

from pki.cli import ca, crl, ocsp, verify
from pki.cli.common import (
    DEFAULT_TOKEN,
    EXIT_FAILURE,
    EXIT_REFUSED,
    EXIT_UNCHECKED,
    PIN_ENV,
    REASONS,
    SO_PIN_ENV,
)
from pki.cli.ocsp import ocsp_app_from_env
from pki.cli.verify import OCSP_TOKEN_ENV, crl_shard_in, verify_exit_code


def register(subparsers: Any) -> None:
    """Add the `ca`, `crl`, `ocsp` and `verify` commands to the root parser."""
    ca.register(subparsers)
    crl.register(subparsers)
    ocsp.register(subparsers)
    verify.register(subparsers)


__all__ = ["DEFAULT_TOKEN", "EXIT_FAILURE", "EXIT_REFUSED", "EXIT_UNCHECKED", "OCSP_TOKEN_ENV",
           "PIN_ENV", "REASONS", "SO_PIN_ENV", "crl_shard_in", "ocsp_app_from_env", "register",
           "verify_exit_code"]
