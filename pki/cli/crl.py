"""`mynacard crl publish`: every CRL shard, signed by the root keys in the HSM."""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Callable
from typing import Any

from pki.cli.common import (
    _add_db_option,
    _add_hsm_options,
    _ca_dir,
    _db,
    _guarded,
    _key_manager,
    _print_json,
)
from pki.errors import PkiError


def _crl_publish(args: argparse.Namespace) -> int:
    from pki.ca import load_ca
    from pki.crl import CrlPublisher
    from pki.store import open_store

    if args.out is None:
        raise PkiError("no CRL folder: pass --out DIR (or run `mynacard center init`)")
    ca = load_ca(_ca_dir(args))
    with _key_manager(args) as km, open_store(_db(args)) as store:
        from hsm.terminal import Progress

        pub = CrlPublisher(key_source=km, ca=ca, store=store,
                           validity=dt.timedelta(hours=args.validity_hours))
        progress = Progress("CRL shards signed", total=len(ca.hierarchies) * ca.shards)
        shards = pub.publish(args.out, progress=progress.add)
        progress.done()
    if args.json:
        _print_json([{"hierarchy": s.hierarchy.value, "shard": s.shard, "path": str(s.path),
                      "crl_number": s.crl_number, "entries": s.entries} for s in shards])
    else:
        total = sum(s.entries for s in shards)
        print(f"published {len(shards)} CRL shards ({total} entries) to {args.out}")
    return 0


def _scheduled(fn: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    from pki.relying_parties.schedule import scheduled

    return scheduled(fn, args)


def register(subparsers: Any) -> None:
    """Add `crl` and its commands."""
    crl = subparsers.add_parser("crl", help="CRL shards")
    crl_sub = crl.add_subparsers(title="commands", metavar="COMMAND", required=True)
    p = crl_sub.add_parser("publish", help="sign and write every CRL shard",
                           description="Write DIR/<sign|auth>/shard-NNNN.crl (DER), each with "
                                       "a new CRL number, signed by the root key in the HSM.")
    _add_hsm_options(p)
    _add_db_option(p)
    p.add_argument("--out", metavar="DIR",
                   help="the CRL folder (default: crl_dir of HOME/config.toml)")
    p.add_argument("--validity-hours", type=float, default=24.0,
                   help="nextUpdate - thisUpdate in hours (default 24)")
    p.add_argument("--every", metavar="DURATION",
                   help="publish now and then every DURATION (e.g. 15m, 1h) until Ctrl-C")
    p.add_argument("--count", type=int, metavar="N", help="with --every: stop after N runs")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=lambda a: _scheduled(_guarded(_crl_publish), a), changes=True,
                   roles=("ca-officer",),
                   audit_action="crl.publish", audit_subject="out",
                   audit_detail=("validity_hours", "every", "count"))
