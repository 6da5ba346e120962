"""`mynacard card ...`: look at cards in readers.

Registered through the `mynacard.commands` entry point; the root command sets
`args.home` and calls `args.func(args)`, whose return value is the exit code.
Card and reader errors are one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path

from card.cms import sign_cms
from card.errors import CardError, PinBlocked, PinIncorrect, what_to_do
from card.info import card_info, format_info
from card.jpki import JpkiClient, Key
from card.readers import resolve_reader
from card.transport import PcscTransport, list_readers, reader_has_card


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the `card` command group."""
    parser = subparsers.add_parser(
        "card", help="look at cards in readers", description="Look at cards in PC/SC readers."
    )
    sub = parser.add_subparsers(title="card commands", metavar="COMMAND")

    info = sub.add_parser(
        "info",
        help="what a card says without a PIN",
        description="Applications, serial, life cycle, tries left of every PIN and code, "
        "and the certificates anyone may read. Uses no PIN try.",
    )
    info.add_argument("--reader", metavar="NAME",
                      help="reader name or index (default: the only reader with a card)")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(func=cmd_info, changes=False, roles="*")

    readers = sub.add_parser("readers", help="list PC/SC readers and whether they hold a card")
    readers.add_argument("--json", action="store_true", help="print JSON")
    readers.set_defaults(func=cmd_readers, changes=False, roles="*")

    sign = sub.add_parser(
        "sign",
        help="sign a file with a JPKI key on the card (CMS)",
        description="Make a detached CMS SignedData (DER) over a file with the card's signing "
        "key (default) or user-authentication key. The PIN is asked for without echo, or read "
        "from --pin-source. Verify it with `mynacard verify --cms OUT --data FILE`.",
    )
    sign.add_argument("file", type=Path, help="the file to sign")
    sign.add_argument("--out", type=Path, help="where to write the signature (default: FILE.p7s;"
                      " written 0600, an existing file only with --force)")
    sign.add_argument("--force", action="store_true", help="overwrite the signature file")
    sign.add_argument("--key", choices=["sign", "auth"], default="sign",
                      help="signing key (password) or user-authentication key (PIN)")
    sign.add_argument("--reader", metavar="NAME",
                      help="reader name or index (default: the only reader with a card)")
    sign.add_argument("--pin-source", metavar="SPEC",
                      help="where the PIN is: env:NAME, file:PATH, fd:N or prompt (the"
                           " default; never the PIN itself)")
    sign.add_argument("--json", action="store_true", help="print JSON")
    sign.set_defaults(func=cmd_sign, changes=False, roles="*")

    auth = sub.add_parser(
        "authenticate",
        help="answer a relying party's login challenge with the card (利用者証明)",
        description="Sign a login challenge (`mynacard login-challenge`) with the card's "
        "user-authentication key after its PIN and write the login response (challenge, "
        "user-authentication certificate, signature) as JSON. The relying party checks it "
        "with `mynacard verify --login RESPONSE`.",
    )
    auth.add_argument("--challenge", type=Path, required=True, metavar="FILE",
                      help="the relying party's challenge (JSON)")
    auth.add_argument("--out", type=Path, help="write the response here 0600 (default stdout)")
    auth.add_argument("--force", action="store_true", help="overwrite --out")
    auth.add_argument("--reader", metavar="NAME",
                      help="reader name (default: the only reader with a card)")
    auth.add_argument("--pin-source", metavar="SPEC",
                      help="where the PIN is: env:NAME, file:PATH, fd:N or prompt (the"
                           " default; never the PIN itself)")
    auth.set_defaults(func=cmd_authenticate, changes=False, roles="*")

    def usage(args: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return 2

    parser.set_defaults(func=usage, changes=False, roles="*")


EXIT_REFUSED = 1  # refused by a rule or invalid input (a wrong PIN, a missing file)
EXIT_FAILURE = 3  # a part failed: the reader, the card, the disk


def _fail(message: str, code: int = EXIT_FAILURE) -> int:
    print(f"mynacard card: error: {message}", file=sys.stderr)
    return code


def _reader_named(args: argparse.Namespace) -> str | None:
    """The reader the operator named, for advice (`insert the card in reader …`)."""
    reader = getattr(args, "reader", None)
    return str(reader) if reader else None


def choose_reader(requested: str | None) -> str:
    """The requested reader, or the only reader that holds a card."""
    if requested:
        return resolve_reader(requested)
    names = list_readers()
    with_card = [name for name in names if reader_has_card(name)]
    if len(with_card) == 1:
        return with_card[0]
    if not names:
        raise CardError("no PC/SC reader found (is pcscd running? is the emulator up?)")
    if not with_card:
        raise CardError("no reader holds a card; name one with --reader")
    raise CardError(f"{len(with_card)} readers hold a card; name one with --reader: "
                    + ", ".join(repr(n) for n in with_card))


def cmd_info(args: argparse.Namespace) -> int:
    try:
        reader = choose_reader(args.reader)
        with PcscTransport(reader) as transport:
            info = card_info(transport)
    except CardError as exc:
        return _fail(what_to_do(exc, _reader_named(args)))
    if args.json:
        print(json.dumps({"reader": reader, **info}, ensure_ascii=False, indent=2))
    else:
        print(format_info(info, reader))
    return 0


def cmd_readers(args: argparse.Namespace) -> int:
    try:
        rows = [{"reader": name, "card": reader_has_card(name)} for name in list_readers()]
    except CardError as exc:
        return _fail(what_to_do(exc, _reader_named(args)))
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    elif not rows:
        print("no PC/SC readers", file=sys.stderr)
    else:
        for row in rows:
            print(f"{row['reader']}\t{'card' if row['card'] else 'empty'}")
    return 0


def read_pin(spec: str | None, prompt: str) -> str:
    """A PIN from `env:NAME`, `file:PATH`, `fd:N` or `prompt`, else asked for without
    echo: the grammar of every `--pin-source` (hsm.pin_source; card imports no other
    project package, so it is spelled out here)."""
    if spec is None or spec in ("prompt", "tty"):
        return getpass.getpass(prompt)
    kind, sep, where = spec.partition(":")
    if not sep or kind not in ("env", "file", "fd") or not where:
        raise ValueError("a pin source is env:NAME, file:PATH, fd:N or prompt")
    if kind == "env":
        value = os.environ.get(where)
        if value is None:
            raise ValueError(f"environment variable {where} is not set")
        return value.strip()
    if kind == "fd":
        if not where.isdigit():
            raise ValueError("pin source fd: needs a descriptor number")
        data = b""
        try:
            while not data.endswith(b"\n") and len(data) < 300:
                chunk = os.read(int(where), 1)
                if not chunk:
                    break
                data += chunk
        except OSError as exc:
            raise ValueError(f"cannot read pin source {spec}: {exc.strerror}") from None
        return data.decode("utf-8", "replace").strip()
    try:
        if os.stat(where).st_mode & 0o044:
            print(f"mynacard: warning: PIN file {where} is readable by other users"
                  " (chmod 600 it)", file=sys.stderr)
        return Path(where).read_text().strip()
    except OSError as exc:
        raise ValueError(f"cannot read the pin file: {exc.strerror}") from None


def _write_new(path: Path, data: bytes, *, force: bool) -> None:
    """Write `data` to `path` 0600 through a temporary file created exclusively, never
    following a symlink; an existing `path` (or a symlink there) only with `force`.
    (card imports no other project package, so this is not hsm.files.)"""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        if force:
            os.replace(tmp, path)
        else:
            os.link(tmp, path, follow_symlinks=False)
    finally:
        tmp.unlink(missing_ok=True)


def cmd_sign(args: argparse.Namespace) -> int:
    key = Key.SIGN if args.key == "sign" else Key.AUTH
    out = args.out or args.file.with_name(args.file.name + ".p7s")
    if not args.force and os.path.lexists(out):
        _fail(f"{out} exists (use --force to overwrite)")
        return 1  # refused before the card is asked for anything
    try:
        data = args.file.read_bytes()
    except OSError as exc:
        return _fail(f"cannot read {args.file}: {exc.strerror}", EXIT_REFUSED)
    what = "signing password" if key is Key.SIGN else "user-authentication PIN"
    try:
        pin = read_pin(args.pin_source, f"{what}: ")
        reader = choose_reader(args.reader)
        with PcscTransport(reader) as transport:
            client = JpkiClient(transport)
            client.verify_pin(key, pin)
            signature = sign_cms(client, data, key=key)
    except (PinIncorrect, PinBlocked) as exc:
        return _fail(f"{what}: {exc}", EXIT_REFUSED)
    except ValueError as exc:
        return _fail(str(exc), EXIT_REFUSED)
    except CardError as exc:
        return _fail(what_to_do(exc, _reader_named(args)))
    try:
        _write_new(out, signature, force=args.force)
    except FileExistsError:
        _fail(f"{out} exists (use --force to overwrite)")
        return 1
    except OSError as exc:
        return _fail(f"cannot write {out}: {exc.strerror}")
    if args.json:
        print(json.dumps({"reader": reader, "key": args.key, "file": str(args.file),
                          "signature": str(out)}))
    else:
        print(f"signed {args.file} with the {args.key} key in {reader!r}: {out}", file=sys.stderr)
    return 0


def cmd_authenticate(args: argparse.Namespace) -> int:
    from card.authenticate import authenticate, parse_challenge

    if args.out is not None and not args.force and os.path.lexists(args.out):
        _fail(f"{args.out} exists (use --force to overwrite)")
        return 1
    try:
        challenge = parse_challenge(args.challenge.read_bytes())
    except OSError as exc:
        return _fail(f"cannot read {args.challenge}: {exc.strerror}")
    except ValueError as exc:
        _fail(f"{args.challenge}: {exc}")
        return 1
    try:
        pin = read_pin(args.pin_source, "user-authentication PIN: ")
        reader = choose_reader(args.reader)
        with PcscTransport(reader) as transport:
            response = authenticate(JpkiClient(transport), challenge, pin)
    except (PinIncorrect, PinBlocked) as exc:
        return _fail(f"user-authentication PIN: {exc}")
    except (CardError, ValueError) as exc:
        return _fail(str(exc))
    text = json.dumps(response, ensure_ascii=False, indent=2) + "\n"
    if args.out is None:
        sys.stdout.write(text)
        return 0
    try:
        _write_new(args.out, text.encode(), force=args.force)
    except FileExistsError:
        _fail(f"{args.out} exists (use --force to overwrite)")
        return 1
    except OSError as exc:
        return _fail(f"cannot write {args.out}: {exc.strerror}")
    print(f"answered the challenge of {challenge['rp']!r} with the card in {reader!r}: "
          f"{args.out}", file=sys.stderr)
    return 0
