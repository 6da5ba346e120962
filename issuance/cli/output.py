"""`--json` on every command that reports anything, errors included.

A command with its own `--json` prints its document on stdout. One without (an action
such as `operator add` or `rp remove`) gets `--json` from the root command: what it
printed is passed through when it is already one JSON document, else wrapped as
`{"command": PATH, "exit": N, "lines": [...]}`. Whatever the command, an error under
`--json` ends with one line `{"error": "...", "exit": N}` on **stderr** (stdout stays
empty or holds the command's own partial result), so a script reads the result from
stdout and the reason from stderr. A verdict that the command's own document states
(`verify`: INVALID exits 1, UNCHECKED 4) is a result, not an error. Servers
(`serves=True`) and command groups that only print help report nothing and take no
`--json`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from collections.abc import Callable
from typing import Any

GENERIC = "generic_json"  # set on commands whose --json the root command added


class _Capture(io.StringIO):
    """A text stream for sys.stdout/sys.stderr that is not a terminal (so progress and
    colour stay off under --json) and has no descriptor (a child process inherits the
    real one)."""

    def isatty(self) -> bool:
        return False


def reports(parser: argparse.ArgumentParser) -> bool:
    """Whether a command prints a result (so it must take --json)."""
    if parser._defaults.get("serves") or parser._defaults.get("reports") is False:
        return False
    return not any(isinstance(a, argparse._SubParsersAction) for a in parser._actions)


def has_json(parser: argparse.ArgumentParser) -> bool:
    return any("--json" in a.option_strings for a in parser._actions)


def add_generic_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true",
                        help="print one JSON document: what the command printed as "
                             '{"command", "exit", "lines"}; errors as {"error", "exit"}'
                             " on stderr")
    parser.set_defaults(**{GENERIC: True})


def error_line(text: str) -> str:
    """The error a command printed: its last line that is not a warning."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if not ln.startswith("mynacard: warning:")]
    return (errors or lines or ["failed"])[-1]


def run_json(args: argparse.Namespace, path: str, run: Callable[[], int]) -> int:
    """Run a command under --json: stdout one document, a failure `{"error", "exit"}`."""
    generic = bool(getattr(args, GENERIC, False))
    out, err = _Capture(), _Capture()
    code = 3
    real_out, real_err = sys.stdout, sys.stderr
    try:
        with contextlib.redirect_stderr(err):
            if generic:
                with contextlib.redirect_stdout(out):
                    code = run()
            else:
                code = run()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        if generic:
            _emit_generic(path, code, out.getvalue(), real_out)
        said = [ln for ln in err.getvalue().splitlines()
                if ln.strip() and not ln.startswith("mynacard: warning:")]
        if code == 0 or (not said and not generic):
            # a success, or a verdict the command's own document states (verify's
            # INVALID, exit 1; UNCHECKED, exit 4): no error to add
            real_err.write(err.getvalue())
        else:  # what it said (warnings, rejected lines) stays; the error document ends it
            real_err.write(err.getvalue())
            doc: dict[str, Any] = {"error": error_line(err.getvalue()), "exit": code}
            print(json.dumps(doc, ensure_ascii=False), file=real_err, flush=True)
    return code


def _emit_generic(path: str, code: int, text: str, stream: Any) -> None:
    if code != 0 and not text.strip():
        return  # the error document on stderr says it all
    try:
        json.loads(text)
        stream.write(text if text.endswith("\n") else text + "\n")
        return
    except ValueError:
        pass
    lines = [ln for ln in text.splitlines() if ln.strip()]
    print(json.dumps({"command": path, "exit": code, "lines": lines}, ensure_ascii=False),
          file=stream, flush=True)
