"""One line saying what to do when a part the command needs is unreachable (the database,
pcscd, a server): every package words it the same way, and never prints a password that
a URL may hold. In hsm, the lowest package every command group may import."""

from __future__ import annotations

import re
from urllib.parse import unquote, unquote_plus, urlsplit

# libpq's URL takes a password in the user-info part and as a query parameter
# (?password=…; sslpassword= unlocks the client key): both are secrets.
_QUERY_SECRET = re.compile(r"(?i)(^|[?&;])((?:ssl)?password)=([^&;#]*)")
# user:password@ in any URL-like text (a driver's reason may quote the URL it was given)
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^:/?#@\s\"']*):[^@\s\"']*@")
# key=value connection strings (libpq's other form) and quoted password=… in messages
_KEYWORD_SECRET = re.compile(r"(?i)\b((?:ssl)?password)\s*=\s*('(?:[^'\\]|\\.)*'|[^\s&;\"']+)")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
# a secret this short would also match innocent text: withhold the reason instead
_SHORTEST_SCRUBBED = 4


def _redact_query(query: str) -> str:
    return _QUERY_SECRET.sub(lambda m: f"{m.group(1)}{m.group(2)}=***", query)


def redacted(url: str) -> str:
    """`url` without a password (postgresql://user:secret@host/db?password=x ->
    user:***@host/db?password=***); the host, database and scheme stay as written."""
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed [IPv6 host: redact by pattern, never echo raw
        return _scrub_patterns(url)
    out = url
    if parts.password is not None:
        userinfo, host = parts.netloc.rsplit("@", 1)
        out = out.replace(f"//{parts.netloc}", f"//{userinfo.split(':', 1)[0]}:***@{host}", 1)
    head, sep, rest = out.partition("?")
    return f"{head}{sep}{_redact_query(rest)}" if sep else head


def scheme(url: str) -> str:
    """The scheme of `url` (`mysql`), the one part of an unsupported URL safe to echo."""
    m = _SCHEME.match(url)
    return m.group(1) if m else "?"


def url_secrets(url: str) -> set[str]:
    """Every form a password of `url` may take in a driver's message: the user-info
    password and password= values, raw and percent-decoded.
    Found by pattern, so an URL urlsplit refuses still yields its secrets."""
    found: set[str] = set()
    m = re.match(r"[A-Za-z][A-Za-z0-9+.-]*://([^/?#]*)@", url)
    if m and ":" in m.group(1):
        found.add(m.group(1).split(":", 1)[1])
    query = url.split("?", 1)[1] if "?" in url else ""
    found |= {q.group(3) for q in _QUERY_SECRET.finditer(query)}
    found |= {k.group(2).strip("'") for k in _KEYWORD_SECRET.finditer(url)}
    decoded = {f(s) for s in found for f in (unquote, unquote_plus)}
    return {s for s in found | decoded if s}


def _scrub_patterns(text: str) -> str:
    text = _USERINFO.sub(lambda m: f"{m.group(1)}:***@", text)
    text = _KEYWORD_SECRET.sub(lambda m: f"{m.group(1)}=***", text)
    return _redact_query(text)


def scrubbed_reason(url: str, exc: BaseException) -> str | None:
    """The first line of a driver's error with every secret of `url` replaced by ***;
    None when a secret would still show (or is too short to replace safely)."""
    lines = str(exc).strip().splitlines()
    reason = lines[0] if lines else type(exc).__name__
    secrets = url_secrets(url)
    for secret in sorted(secrets, key=len, reverse=True):
        if secret in reason:
            if len(secret) < _SHORTEST_SCRUBBED:
                return None
            reason = reason.replace(secret, "***")
    reason = _scrub_patterns(reason)
    if any(secret in reason for secret in secrets if len(secret) >= _SHORTEST_SCRUBBED):
        return None
    return reason


def database_unreachable(url: str, exc: BaseException) -> str:
    """`cannot connect to PostgreSQL (first line of the reason); check the database at
    URL: is the server running?` - the reason scrubbed of the URL's password, or only
    the error's type when it cannot be."""
    reason = scrubbed_reason(url, exc)
    if reason is None:
        reason = f"{type(exc).__name__}; its text is withheld: it quotes the password"
    return (f"cannot connect to PostgreSQL ({reason}); check the database at"
            f" {redacted(url)}: is the server running and reachable?")
