"""Substitute characters (代替文字): what the signing certificate carries for a character
of a name or an address that JIS X 0208 cannot show.

The certificate's name and address are JIS X 0208 text; a character outside it (a
variant such as 髙 or 𠮷, a half-width kana) is replaced, one character for one, and its
position is flagged ``1`` in the substitute-flag otherName (`pki.identity`:
``name_substitute`` / ``address_substitute``; empty when nothing was replaced). The
replacement is the standard form from `VARIANTS` when there is one, else the geta mark
〓 (U+3013). The holder may ask at the counter for another replacement of a character
(`overrides`); it must itself be JIS X 0208.

The replacement table of J-LIS is not public; `VARIANTS` holds the common variants of
family names and place names and is extended as the counter meets others.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from pki.identity import Identity

GETA = "\u3013"  # 〓

# Variant -> the JIS X 0208 form it stands for.
VARIANTS: Mapping[str, str] = {
    "髙": "高",
    "𠮷": "吉",
    "﨑": "崎",
    "德": "徳",
    "濵": "浜",
    "栁": "柳",
    "𡈽": "土",
    "𦚰": "脇",
    "凞": "煕",
    "瀨": "瀬",
}


def representable(char: str) -> bool:
    """Whether JIS X 0208 (or ASCII) has `char`.

    Both mappings of JIS X 0208 to Unicode are taken: the JIS one (ISO-2022-JP) and the
    one of Windows (cp932, e.g. U+FF0D for the minus sign), but not cp932's NEC and IBM
    extensions nor half-width kana.
    """
    if len(char) != 1:
        return False
    try:
        char.encode("iso2022_jp")
        return True
    except UnicodeEncodeError:
        pass
    try:
        raw = char.encode("cp932")
    except UnicodeEncodeError:
        return False
    if len(raw) != 2:
        return False
    try:
        raw.decode("shift_jis")  # the JIS X 0208 code space only
    except UnicodeDecodeError:
        return False
    return True


def replacement_for(char: str, overrides: Mapping[str, str] | None = None) -> str:
    """The one character standing for `char` on the certificate."""
    if overrides and char in overrides:
        return overrides[char]
    if char in VARIANTS:
        return VARIANTS[char]
    folded = unicodedata.normalize("NFKC", char)
    if len(folded) == 1 and representable(folded):
        return folded
    return GETA


def check_override(original: str, replacement: str) -> None:
    """ValueError unless `replacement` may stand for `original` on a certificate."""
    if len(original) != 1 or representable(original):
        raise ValueError(f"{original!r} is not one character outside JIS X 0208")
    if len(replacement) != 1 or not representable(replacement):
        raise ValueError(f"the replacement {replacement!r} is not one JIS X 0208 character")


@dataclass(frozen=True)
class Substituted:
    text: str
    flags: str  # empty, or one '0'/'1' per character of text

    @property
    def replaced(self) -> bool:
        return "1" in self.flags


def substitute(text: str, overrides: Mapping[str, str] | None = None) -> Substituted:
    """`text` as the certificate carries it, with its substitute flags."""
    out: list[str] = []
    flags: list[str] = []
    for char in text:
        if representable(char):
            out.append(char)
            flags.append("0")
        else:
            out.append(replacement_for(char, overrides))
            flags.append("1")
    return Substituted("".join(out), "".join(flags) if "1" in flags else "")


def substituted_identity(identity: Identity,
                         overrides: Mapping[str, str] | None = None) -> Identity:
    """`identity` with every unrepresentable character of the name and the address
    replaced and flagged. Text that is representable already keeps the flags it has (it
    may have been substituted before), so applying this twice changes nothing."""
    changes: dict[str, Any] = {}
    for attr in ("name", "address"):
        result = substitute(getattr(identity, attr), overrides)
        if result.replaced:
            previous = getattr(identity, f"{attr}_substitute")
            flags = result.flags
            if previous:  # keep what an earlier substitution flagged
                flags = "".join("1" if "1" in (a, b) else "0"
                                for a, b in zip(previous, flags, strict=True))
            changes[attr] = result.text
            changes[f"{attr}_substitute"] = flags
    return replace(identity, **changes) if changes else identity
