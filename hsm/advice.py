"""One line saying what to do when a part the command needs is unreachable (the database,
pcscd, a server): every package words it the same way, and never prints a password that
a URL may hold. In hsm, the lowest package every command group may import."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def redacted(url: str) -> str:
    """`url` without a password (postgresql://user:secret@host/db -> user:***@host)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


def database_unreachable(url: str, exc: BaseException) -> str:
    """`cannot connect to PostgreSQL (first line of the reason); check the database at
    URL: is the server running?`"""
    lines = str(exc).strip().splitlines()
    reason = lines[0] if lines else type(exc).__name__
    return (f"cannot connect to PostgreSQL ({reason}); check the database at"
            f" {redacted(url)}: is the server running and reachable?")
