"""`pkcs11:` URIs (RFC 7512) naming tokens and keys.

    pkcs11:token=mynacard-dev;object=jpki-sign-root;id=%8a%01;type=private
        ?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=env:MYNACARD_HSM_PIN

Path attributes (`;`-separated): token, object, id (bytes, percent-encoded), type,
manufacturer, model, serial, slot-id and any other (kept as-is). Query attributes
(`&`-separated): module-path, module-name, pin-source, others kept. `pin-value` is
refused: PINs come from a pin-source, never from a URI.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote_to_bytes

from hsm.errors import UriError

SCHEME = "pkcs11:"
OBJECT_TYPES = ("public", "private", "secret-key", "cert", "data")

# RFC 7512 pk11-pchar / pk11-qchar besides unreserved characters.
_PATH_SAFE = ":[]@!$'()*+,="
_QUERY_SAFE = ":[]@!$'()*+,=/?|"

_PATH_FIELDS = {
    "token": "token",
    "object": "object",
    "id": "id",
    "type": "type",
    "manufacturer": "manufacturer",
    "model": "model",
    "serial": "serial",
}
_QUERY_FIELDS = {
    "module-path": "module_path",
    "module-name": "module_name",
    "pin-source": "pin_source",
}


def _text(raw: str, name: str) -> str:
    try:
        return unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise UriError(f"pkcs11 URI attribute {name!r} is not UTF-8") from None


@dataclass(frozen=True)
class Pkcs11Uri:
    """A parsed `pkcs11:` URI. Immutable; `str()` gives the canonical form."""

    token: str | None = None
    object: str | None = None
    id: bytes | None = None
    type: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    serial: str | None = None
    module_path: str | None = None
    module_name: str | None = None
    pin_source: str | None = None
    extra_path: tuple[tuple[str, str], ...] = field(default=())
    extra_query: tuple[tuple[str, str], ...] = field(default=())

    def __post_init__(self) -> None:
        if self.id is not None and not isinstance(self.id, bytes):
            raise TypeError("id must be bytes")
        if self.type is not None and self.type not in OBJECT_TYPES:
            raise UriError(f"pkcs11 URI type must be one of {', '.join(OBJECT_TYPES)}")

    @classmethod
    def parse(cls, text: str) -> Pkcs11Uri:
        """Parse a `pkcs11:` URI; `UriError` if malformed, duplicated or carrying a PIN."""
        if not isinstance(text, str):
            raise TypeError("pkcs11 URI must be a str")
        if not text[: len(SCHEME)].lower() == SCHEME:
            raise UriError("not a pkcs11: URI")
        rest = text[len(SCHEME) :]
        path, _, query = rest.partition("?")
        if "#" in query or "#" in path:
            raise UriError("pkcs11 URI must not have a fragment")
        values: dict[str, Any] = {}
        extra_path: list[tuple[str, str]] = []
        extra_query: list[tuple[str, str]] = []
        seen: set[str] = set()
        for part in path.split(";") if path else []:
            name, eq, raw = part.partition("=")
            if not eq or not name:
                raise UriError("pkcs11 URI path attribute without '='")
            if name in seen:
                raise UriError(f"pkcs11 URI attribute {name!r} appears twice")
            seen.add(name)
            if name == "id":
                values["id"] = unquote_to_bytes(raw)
            elif name in _PATH_FIELDS:
                values[_PATH_FIELDS[name]] = _text(raw, name)
            else:
                extra_path.append((name, _text(raw, name)))
        for part in query.split("&") if query else []:
            name, eq, raw = part.partition("=")
            if not eq or not name:
                raise UriError("pkcs11 URI query attribute without '='")
            if name == "pin-value":
                raise UriError("pkcs11 URI must not carry a PIN (pin-value); use pin-source")
            if name in seen:
                raise UriError(f"pkcs11 URI attribute {name!r} appears twice")
            seen.add(name)
            if name in _QUERY_FIELDS:
                values[_QUERY_FIELDS[name]] = _text(raw, name)
            else:
                extra_query.append((name, _text(raw, name)))
        return cls(
            extra_path=tuple(extra_path),
            extra_query=tuple(extra_query),
            **values,
        )

    def format(self) -> str:
        """The URI text: attributes in a fixed order, `id` percent-encoded byte by byte."""
        path: list[str] = []
        for attr, fname in _PATH_FIELDS.items():
            value = getattr(self, fname)
            if value is None:
                continue
            if attr == "id":
                path.append("id=" + "".join(f"%{b:02x}" for b in value))
            else:
                path.append(f"{attr}={quote(value, safe=_PATH_SAFE)}")
        path.extend(f"{k}={quote(v, safe=_PATH_SAFE)}" for k, v in self.extra_path)
        query: list[str] = []
        for attr, fname in _QUERY_FIELDS.items():
            value = getattr(self, fname)
            if value is not None:
                query.append(f"{attr}={quote(value, safe=_QUERY_SAFE)}")
        query.extend(f"{k}={quote(v, safe=_QUERY_SAFE)}" for k, v in self.extra_query)
        text = SCHEME + ";".join(path)
        if query:
            text += "?" + "&".join(query)
        return text

    def __str__(self) -> str:
        return self.format()

    def replace(self, **changes: Any) -> Pkcs11Uri:
        """A copy with some attributes changed (`None` removes one)."""
        return dataclasses.replace(self, **changes)


def parse_uri(text: str) -> Pkcs11Uri:
    """Shorthand for `Pkcs11Uri.parse`."""
    return Pkcs11Uri.parse(text)


def format_uri(uri: Pkcs11Uri) -> str:
    """Shorthand for `Pkcs11Uri.format`."""
    return uri.format()
