"""The counter's identity-check options, shared by `apply` and `activate`."""

from __future__ import annotations

import argparse
from typing import Any

from issuance.records.identity_documents import (
    LIST_A,
    LIST_B,
    RELATIONS,
    DocumentError,
    IdentityCheck,
    build_check,
)

DOCUMENTS_HELP = (f"Identity documents (rule 4.3): one of list A ({', '.join(LIST_A)}) or two "
                  f"of list B ({', '.join(LIST_B)}); only the kind and a digest of the "
                  "reference are kept.")


def add_identity_options(parser: Any) -> None:
    group = parser.add_argument_group("identity check (本人確認)", DOCUMENTS_HELP)
    group.add_argument("--identity-document", action="append", default=[],
                       metavar="KIND:REF", help="a document the holder showed (repeat for two)")
    group.add_argument("--legal-representative", metavar="NAME",
                       help="the 法定代理人 of a minor under 15 or an adult ward, who sets "
                            "the PINs")
    group.add_argument("--representative-relation", choices=RELATIONS, default=None,
                       help="how the representative is related (default parent)")
    group.add_argument("--representative-document", action="append", default=[],
                       metavar="KIND:REF", help="a document the representative showed")


def identity_from_args(args: argparse.Namespace) -> IdentityCheck | DocumentError | None:
    """The check the options describe, the DocumentError that refuses them, or None."""
    try:
        return build_check(args.identity_document,
                           representative_name=args.legal_representative,
                           representative_relation=args.representative_relation,
                           representative_documents=args.representative_document)
    except DocumentError as exc:
        return exc
