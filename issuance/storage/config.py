"""Which database the CLI uses: `--db URL`, else `$MYNACARD_DB`, else SQLite in the home."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from issuance.storage.db import default_url

DB_ENV = "MYNACARD_DB"


def resolve_db_url(option: str | None, home: Path, environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    return option or env.get(DB_ENV) or default_url(home)
