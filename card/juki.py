"""Resident registry application (住基AP): the resident code, behind the juki PIN only."""

from __future__ import annotations

from card import contract
from card.formats import parse_resident_code_file
from card.session import AreaClient


class JukiClient(AreaClient):
    """Holder operations of the resident registry application."""

    area = contract.JUKI

    def verify_pin(self, pin: str) -> None:
        self.verify(contract.JUKI_PIN, pin)

    def resident_code(self) -> str:
        """The 11-digit resident code (住民票コード); needs the juki PIN verified."""
        return parse_resident_code_file(self.read_object(contract.JUKI_RESIDENT_CODE))

    def change_juki_pin(self, old: str, new: str) -> None:
        """Change the juki PIN with the JICSAP CHANGE KEY form the real 住基AP uses."""
        self.change_pin(contract.JUKI_PIN, old, new, jicsap=True)
