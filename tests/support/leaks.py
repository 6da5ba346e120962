"""Whether a secret shows in text a test captured (output, a page, the audit log).

A short PIN is also a run of digits inside longer values the text rightly holds: a card
serial, a certificate's hex digest (…ce9137214b… once failed a test that looked for the
wrong PIN 9137 by substring). A secret shows when it stands as a value of its own, not
inside a longer run of letters and digits; `pin=9137`, `"9137"` and `9137.` all count.
"""

from __future__ import annotations

import re


def shows(text: str, secret: str) -> bool:
    """`secret` written in `text` as a value of its own."""
    if not secret:
        raise ValueError("an empty secret shows everywhere")
    before = "(?<![0-9A-Za-z])" if secret[0].isalnum() else ""
    after = "(?![0-9A-Za-z])" if secret[-1].isalnum() else ""
    return re.search(before + re.escape(secret) + after, text) is not None
