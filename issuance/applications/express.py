"""The express-issuance (特急発行) reasons and their deadlines (rule 4.8).

Rule 4.8 lists nine reasons (1)–(9); the MIC express slides list two more the municipal
pages do not name on their own: a card that lapsed through the office's fault
(役所起因のカード失効) and a stolen card (盗難, listed with damage, not with loss).
mynacard numbers those 4.8(10) and 4.8(11), after the nine, so the numbers printed so
far keep their meaning.

Each reason applies to the first card after its event and only until its deadline:
(1) under 1 year old — until the day before the first birthday (the event is the birth);
(2)–(11) — within 30 days of the event. Counting follows 民法 §140 (初日不算入): the
event day is day 0, so the last day is the event date + 30 days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from issuance.registry.dates import day_before_birthday

EXPRESS_START = date(2024, 12, 2)  # rule 4.6: express issuance exists from 2024-12-02
DAYS = 30


class ExpressReason(StrEnum):
    UNDER_ONE = "under_one"
    ARRIVAL_FROM_ABROAD = "arrival_from_abroad"
    CARD_LOST = "card_lost"
    NEW_REGISTRATION = "new_registration"
    NEW_MID_LONG_TERM_RESIDENT = "new_mid_long_term_resident"
    NUMBER_CHANGED = "number_changed"
    CARD_DAMAGED = "card_damaged"
    RECORD_FIELD_FULL = "record_field_full"
    RELEASED_FROM_PRISON = "released_from_prison"
    OFFICE_CAUSED_LAPSE = "office_caused_lapse"
    CARD_STOLEN = "card_stolen"

    @property
    def number(self) -> int:
        """The item number in rule 4.8 (10 and 11: the MIC express slides' own items)."""
        return list(ExpressReason).index(self) + 1

    @property
    def rule(self) -> str:
        return f"4.8({self.number})"

    @property
    def event(self) -> str:
        return _EVENTS[self]

    @classmethod
    def parse(cls, text: str) -> ExpressReason:
        """A reason by name (`card_lost`, `card-lost`) or by its number in rule 4.8."""
        text = text.strip().lower().replace("-", "_")
        if text.isdigit() and 1 <= int(text) <= len(cls):
            return list(cls)[int(text) - 1]
        return cls(text)


_EVENTS: dict[ExpressReason, str] = {
    ExpressReason.UNDER_ONE: "birth",
    ExpressReason.ARRIVAL_FROM_ABROAD: "first 転入届 after arriving from abroad",
    ExpressReason.CARD_LOST: "紛失届 (loss report)",
    ExpressReason.NEW_REGISTRATION: "obtaining identity documents after a new 住民票 entry",
    ExpressReason.NEW_MID_LONG_TERM_RESIDENT: "notification as a new 中長期在留者",
    ExpressReason.NUMBER_CHANGED: "change of My Number or resident code (card lapsed)",
    ExpressReason.CARD_DAMAGED: "card burnt, badly damaged or chip failure",
    ExpressReason.RECORD_FIELD_FULL: "the change that could not be recorded (追記欄満欄)",
    ExpressReason.RELEASED_FROM_PRISON: "obtaining identity documents after release",
    ExpressReason.OFFICE_CAUSED_LAPSE: "the card lapsed through the office's fault "
                                       "(役所起因のカード失効)",
    ExpressReason.CARD_STOLEN: "盗難 (theft) reported",
}


@dataclass(frozen=True)
class ExpressDecision:
    reason: ExpressReason
    event_date: date
    deadline: date


def deadline(reason: ExpressReason, event_date: date, *, birth_date: date) -> date:
    """The last day an application under `reason` may be received."""
    if reason is ExpressReason.UNDER_ONE:
        return day_before_birthday(birth_date, 1)
    return event_date + timedelta(days=DAYS)
