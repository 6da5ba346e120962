"""Card errors: one exception class per status word under `CardError`.

`raise_for_status(sw)` turns a status word into its exception; clients call it on
every response that is not `9000`. Messages name the status, never a PIN.
"""

from __future__ import annotations

from card.contract import SW


class CardError(Exception):
    """Root of every error raised by the card package."""


class TransportError(CardError):
    """The reader, the card connection or PC/SC failed (not a status word)."""


class ReaderNotFound(TransportError):
    """No reader of that name is known to PC/SC."""


class NoCard(TransportError):
    """The reader has no card, or the card was removed."""


class StatusError(CardError):
    """The card answered with a status word other than 9000."""

    sw: int = 0
    meaning = "unexpected status word"

    def __init__(self, sw: int | None = None, message: str | None = None) -> None:
        if sw is not None:
            self.sw = sw
        super().__init__(message or f"{self.meaning} (SW {self.sw:04X})")


class PinIncorrect(StatusError):
    """Wrong PIN; `tries_left` tries remain (63Cx with x > 0)."""

    meaning = "wrong PIN"

    def __init__(self, sw: int, message: str | None = None) -> None:
        self.tries_left = sw & 0x0F
        super().__init__(sw, message or f"wrong PIN, {self.tries_left} tries left (SW {sw:04X})")


class PinBlocked(StatusError):
    """The PIN is blocked: 63C0 on the try that blocked it, 6984 afterwards."""

    meaning = "PIN blocked; only the issuer can reset it"
    tries_left = 0


class WrongLength(StatusError):
    sw = SW.WRONG_LENGTH
    meaning = "wrong length"


class SecureMessagingNotSupported(StatusError):
    sw = SW.SECURE_MESSAGING_NOT_SUPPORTED
    meaning = "secure messaging not supported"


class CommandIncompatible(StatusError):
    sw = SW.COMMAND_INCOMPATIBLE
    meaning = "command incompatible with the file"


class SecurityStatusNotSatisfied(StatusError):
    sw = SW.SECURITY_STATUS_NOT_SATISFIED
    meaning = "security status not satisfied (credential needed)"


class AuthenticationBlocked(StatusError):
    sw = SW.AUTHENTICATION_BLOCKED
    meaning = "authentication method blocked"


class ConditionsNotSatisfied(StatusError):
    sw = SW.CONDITIONS_NOT_SATISFIED
    meaning = "conditions of use not satisfied (life cycle or PIN not set)"


class NoCurrentEF(StatusError):
    sw = SW.NO_CURRENT_EF
    meaning = "no file selected"


class IncorrectData(StatusError):
    sw = SW.INCORRECT_DATA
    meaning = "incorrect data"


class FileNotFound(StatusError):
    sw = SW.FILE_NOT_FOUND
    meaning = "file or application not found"


class NotEnoughSpace(StatusError):
    sw = SW.NOT_ENOUGH_SPACE
    meaning = "not enough space in the file"


class IncorrectP1P2(StatusError):
    sw = SW.INCORRECT_P1P2
    meaning = "incorrect P1/P2"


class DataNotFound(StatusError):
    sw = SW.DATA_NOT_FOUND
    meaning = "data object not found"


class OffsetOutOfRange(StatusError):
    sw = SW.OFFSET_OUT_OF_RANGE
    meaning = "offset beyond the end of the file"


class InsNotSupported(StatusError):
    sw = SW.INS_NOT_SUPPORTED
    meaning = "instruction not supported"


class ClaNotSupported(StatusError):
    sw = SW.CLA_NOT_SUPPORTED
    meaning = "class not supported"


_BY_SW: dict[int, type[StatusError]] = {
    cls.sw: cls
    for cls in (
        WrongLength, SecureMessagingNotSupported, CommandIncompatible,
        SecurityStatusNotSatisfied, AuthenticationBlocked, ConditionsNotSatisfied,
        NoCurrentEF, IncorrectData, FileNotFound, NotEnoughSpace, IncorrectP1P2,
        DataNotFound, OffsetOutOfRange, InsNotSupported, ClaNotSupported,
    )
}


def error_for(sw: int) -> StatusError:
    """The exception for a non-9000 status word."""
    if sw == SW.REFERENCE_DATA_BLOCKED or sw == 0x63C0:
        return PinBlocked(sw)
    if sw & 0xFFF0 == 0x63C0:
        return PinIncorrect(sw)
    cls = _BY_SW.get(sw)
    return cls(sw) if cls else StatusError(sw)


def raise_for_status(sw: int) -> None:
    """Raise the status word's exception unless it is 9000."""
    if sw != SW.OK:
        raise error_for(sw)


PCSCD_ADVICE = ("start pcscd (`systemctl start pcscd`, or `mynacard emulator up` for the "
                "emulator) and run the command again")


def what_to_do(exc: BaseException, reader: str | None = None) -> str:
    """The one line a command prints for a card or reader failure: what happened and
    what the operator does next (the card removed, pcscd gone, an unknown reader)."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    where = f"reader {reader!r}" if reader else "the reader"
    if isinstance(exc, NoCard):
        return f"{text}: insert the card in {where} and run the command again"
    if isinstance(exc, ReaderNotFound) and "pcscd" not in text:
        return f"{text}: check the name with `mynacard card readers`"
    if isinstance(exc, TransportError) and ("PC/SC is not available" in text
                                            or "Service not available" in text):
        return f"{text}: {PCSCD_ADVICE}"
    return text
