"""The registry view: residents' identity facts (本人確認情報) and 附票 entries.

Public API: `Resident`, `FuhyoEntry`, `Sex`, `Nationality`, `ResidentStatus`,
`parse_record`, `RecordError`, `COLUMNS` (the CSV columns of schema.json),
`load_file`, `ResidentGenerator`, `ResidentStore`, and the check-digit functions in
`issuance.registry.checkdigits`.
"""

from issuance.registry.generator import ResidentGenerator
from issuance.registry.loader import LoadFileError, LoadReport, Reject, load_file
from issuance.registry.model import (
    COLUMNS,
    REQUIRED,
    FuhyoEntry,
    Nationality,
    RecordError,
    RegistryError,
    Resident,
    ResidentStatus,
    Sex,
    parse_record,
)
from issuance.registry.store import ResidentStore

SCHEMA_RESOURCE = "schema.json"

__all__ = [
    "COLUMNS",
    "REQUIRED",
    "SCHEMA_RESOURCE",
    "FuhyoEntry",
    "LoadFileError",
    "LoadReport",
    "Nationality",
    "RecordError",
    "RegistryError",
    "Reject",
    "Resident",
    "ResidentGenerator",
    "ResidentStatus",
    "ResidentStore",
    "Sex",
    "load_file",
    "parse_record",
]
