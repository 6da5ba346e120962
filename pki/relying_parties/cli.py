"""`mynacard rp …`: registered relying parties, their subscriptions and webhook pushes.

  mynacard rp add NAME --kind signature-verifier|user-verifier|platform-operator [--webhook URL]
  mynacard rp list | rp remove NAME
  mynacard rp subscribe NAME --serial HEX [HEX…] | rp unsubscribe NAME --serial HEX…
  mynacard rp push [--follow [--interval 1s]]

The registry lives in the certificate store's database (HOME/store.sqlite or --db).
`rp add` prints the bearer token (for the OCSP responder) and the webhook secret once;
only the token's SHA-256 is kept.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pki.errors import PkiError, StoreError

_RAW = argparse.RawDescriptionHelpFormatter


def _db(args: argparse.Namespace) -> str | Path:
    return args.db if args.db else Path(args.home) / "store.sqlite"


def _guarded(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except (PkiError, ValueError) as exc:
            print(f"mynacard: error: {str(exc).splitlines()[0]}", file=sys.stderr)
            return 3 if isinstance(exc, StoreError) else 1  # a store that failed: 3
    return run


def _registry(args: argparse.Namespace) -> Any:
    from pki.relying_parties.registry import RelyingPartyRegistry
    from pki.store import open_store

    open_store(_db(args)).close()  # the store (and its schema) must exist first
    return RelyingPartyRegistry(_db(args))


def _add(args: argparse.Namespace) -> int:
    with _registry(args) as reg:
        new = reg.add(args.name, kind=args.kind, webhook_url=args.webhook)
    if args.json:
        print(json.dumps({**new.party.to_json(), "token": new.token,
                          "webhook_secret": new.webhook_secret}, ensure_ascii=False, indent=2))
    else:
        print(f"relying party {new.party.name} ({new.party.kind}) added")
        print(f"  OCSP bearer token: {new.token}")
        if new.webhook_secret:
            print(f"  webhook secret:    {new.webhook_secret}")
        print("  (shown once: store them now)")
    return 0


def _list(args: argparse.Namespace) -> int:
    with _registry(args) as reg:
        parties = reg.parties()
    if args.json:
        print(json.dumps([p.to_json() for p in parties], ensure_ascii=False, indent=2))
    else:
        for p in parties:
            print(f"{p.name}\t{p.kind}\t{p.webhook_url or '-'}\t{p.subscriptions} subscription(s)")
    return 0


def _remove(args: argparse.Namespace) -> int:
    with _registry(args) as reg:
        reg.remove(args.name)
    print(f"relying party {args.name} removed")
    return 0


def _subscribe(args: argparse.Namespace) -> int:
    with _registry(args) as reg:
        n = reg.subscribe(args.name, args.serial)
    print(f"{args.name}: subscribed to {n} new certificate(s)")
    return 0


def _unsubscribe(args: argparse.Namespace) -> int:
    with _registry(args) as reg:
        n = reg.unsubscribe(args.name, args.serial)
    print(f"{args.name}: unsubscribed from {n} certificate(s)")
    return 0


def _push(args: argparse.Namespace) -> int:
    from pki.relying_parties.schedule import parse_duration, run_every
    from pki.relying_parties.webhooks import PushReport, WebhookDispatcher
    from pki.store import open_store

    open_store(_db(args)).close()
    total = PushReport()
    with WebhookDispatcher(_db(args), max_attempts=args.max_attempts,
                           backoff=parse_duration(args.backoff)) as dispatcher:
        def once() -> None:
            r = dispatcher.run_once()
            for k in ("enqueued", "delivered", "retried", "failed"):
                setattr(total, k, getattr(total, k) + getattr(r, k))
            if args.follow and (r.enqueued or r.delivered or r.retried or r.failed):
                print(json.dumps(r.to_json()), file=sys.stderr, flush=True)

        if args.follow:
            run_every(once, every=parse_duration(args.interval), count=args.count,
                      on_error=lambda e: print(f"mynacard: push: {e}", file=sys.stderr))
        else:
            once()
    if args.json:
        print(json.dumps(total.to_json()))
    else:
        print(f"queued {total.enqueued}, delivered {total.delivered}, "
              f"retrying {total.retried}, failed {total.failed}")
    return 0


def register(subparsers: Any) -> None:
    """Add the `rp` command group to the root parser."""
    rp = subparsers.add_parser("rp", help="relying parties: OCSP tokens, subscriptions, webhooks",
                               description=__doc__, formatter_class=_RAW)
    sub = rp.add_subparsers(title="commands", metavar="COMMAND", required=True)

    def common(p: argparse.ArgumentParser, *, json_out: bool = False) -> None:
        from hsm.options import add_deprecated_alias

        p.add_argument("--store", dest="db", metavar="PATH|URL",
                       help="certificate store: SQLite file or postgresql:// URL "
                            "(default HOME/config.toml, else HOME/store.sqlite)")
        add_deprecated_alias(p, "--db", new="--store", dest="db")
        if json_out:
            p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("add", help="register a relying party (prints its token once)")
    p.add_argument("name")
    p.add_argument("--kind", required=True,
                   help="signature-verifier (署名検証者), user-verifier (利用者証明検証者) or "
                        "platform-operator (プラットフォーム事業者)")
    p.add_argument("--webhook", metavar="URL", help="where revocation pushes are POSTed")
    common(p, json_out=True)
    p.set_defaults(func=_guarded(_add), changes=True, roles=("ca-officer",),
                   audit_action="rp.add", audit_subject="name",
                   audit_detail=("kind", "webhook"))

    p = sub.add_parser("list", help="list relying parties")
    common(p, json_out=True)
    p.set_defaults(func=_guarded(_list), changes=False, roles="*")

    p = sub.add_parser("remove", help="remove a relying party (its token stops working)")
    p.add_argument("name")
    common(p)
    p.set_defaults(func=_guarded(_remove), changes=True, roles=("ca-officer",),
                   audit_action="rp.remove",
                   audit_subject="name")

    for name, fn, text in (("subscribe", _subscribe, "be pushed when these certificates change"),
                           ("unsubscribe", _unsubscribe, "stop pushes for these certificates")):
        p = sub.add_parser(name, help=text)
        p.add_argument("name")
        p.add_argument("--serial", nargs="+", required=True, metavar="HEX")
        common(p)
        p.set_defaults(func=_guarded(fn), changes=True, roles=("ca-officer",),
                       audit_action=f"rp.{name}",
                       audit_subject="name", audit_detail=("serial",))

    p = sub.add_parser("push", help="send revocation webhooks (once, or --follow)",
                       description="Queue an event for every subscribed certificate revoked "
                                   "(or given a successor) since the last run, then POST the "
                                   "due events, signed with HMAC-SHA256; failures are retried "
                                   "with exponential backoff up to --max-attempts.")
    p.add_argument("--follow", action="store_true", help="keep running (Ctrl-C stops)")
    p.add_argument("--interval", default="1s", metavar="DURATION",
                   help="with --follow: time between runs (default 1s)")
    p.add_argument("--count", type=int, metavar="N", help="with --follow: stop after N runs")
    p.add_argument("--max-attempts", type=int, default=8, metavar="N")
    p.add_argument("--backoff", default="2s", metavar="DURATION",
                   help="first retry delay, doubled each attempt (default 2s)")
    common(p, json_out=True)
    p.set_defaults(func=_guarded(_push), changes=True, roles=("ca-officer",),
                   audit_action="rp.push",
                   audit_detail=("follow", "count"))


def main(argv: list[str] | None = None) -> int:
    """`python -m pki.relying_parties.cli [--home DIR] rp …` (the same commands as
    `mynacard rp …`, for hosts without the entry point)."""
    import os

    parser = argparse.ArgumentParser(prog="mynacard")
    parser.add_argument("--home", default=os.environ.get("MYNACARD_HOME", "."),
                        metavar="DIR", help="state directory")
    register(parser.add_subparsers(title="commands", metavar="COMMAND", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
