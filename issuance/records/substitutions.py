"""A resident's choices of substitute characters (代替文字), asked for at the counter.

Without a choice, `pki.substitutes` replaces a character JIS X 0208 cannot show by its
standard form or by 〓. The holder may ask for another JIS X 0208 character (or for 〓
where the table gives a standard form); the choice applies to the certificates issued
from then on (a signing certificate already issued keeps what it says).
"""

from __future__ import annotations

from issuance.storage import Transaction
from pki.substitutes import check_override


def substitutions_of(tx: Transaction, resident_code: str) -> dict[str, str]:
    """Original character -> the replacement the holder chose."""
    return {r["original"]: r["replacement"] for r in tx.query(
        "SELECT original, replacement FROM character_substitutions WHERE resident_code = ?",
        (resident_code,))}


def set_substitution(tx: Transaction, resident_code: str, original: str, replacement: str, *,
                     operator: str, now: str) -> None:
    """Record the holder's choice (ValueError unless `original` is outside JIS X 0208 and
    `replacement` is one JIS X 0208 character)."""
    check_override(original, replacement)
    tx.execute("DELETE FROM character_substitutions WHERE resident_code = ? AND original = ?",
               (resident_code, original))
    tx.execute("INSERT INTO character_substitutions (resident_code, original, replacement,"
               " operator, requested_at) VALUES (?, ?, ?, ?, ?)",
               (resident_code, original, replacement, operator, now))
