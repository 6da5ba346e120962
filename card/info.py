"""What a card says about itself without any PIN: applications, serial, life cycle,
tries left of every PIN and code, and the certificates anyone may read.

Used by `mynacard card info`; returns plain data so it prints as text or JSON.
Nothing here verifies a PIN or uses up a try (tries are read with empty VERIFYs).
"""

from __future__ import annotations

from typing import Any

from cryptography import x509

from card import contract
from card.common_ap import CommonClient
from card.contract import LifeCycle, Tag
from card.errors import CardError, ConditionsNotSatisfied, SecurityStatusNotSatisfied
from card.formats import CertAvailability
from card.issuer import IssuerClient, PinStatus
from card.jpki import CertKind, JpkiClient
from card.session import AreaClient, Channel, FileEmpty, area_client, channel_for
from card.transport import Transport


def _certificate_summary(cert: x509.Certificate) -> dict[str, Any]:
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "serial": format(cert.serial_number, "x"),
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
    }


def _pin_entry(
    client: AreaClient, pin: contract.PinSpec, state: LifeCycle | None, status: PinStatus | None
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "area": client.area.name,
        "fid": f"{pin.fid:04X}",
        "name": pin.name,
        "max_tries": pin.tries,
        "tries_left": None,
    }
    holder_bit = contract.PinBit(pin.bit) if pin.bit else None
    if status is not None and holder_bit is not None and holder_bit not in status.set:
        entry["state"] = "not set"
        return entry
    try:
        tries = client.tries_left(pin.fid)
    except ConditionsNotSatisfied:
        card_wide = client.area is not contract.MUNICIPAL_LIBRARY
        if card_wide and state is not None and state != LifeCycle.ACTIVE:
            entry["state"] = f"unavailable (card {state.name.lower()})"
        else:
            entry["state"] = "not set"
        return entry
    except CardError as exc:
        entry["state"] = f"unavailable ({exc})"
        return entry
    entry["tries_left"] = tries
    entry["state"] = "blocked" if tries == 0 else "ok"
    return entry


def card_info(transport: Transport | Channel) -> dict[str, Any]:
    """Everything `card info` shows, as JSON-ready data."""
    channel = channel_for(transport)
    issuer = IssuerClient(channel)
    info: dict[str, Any] = {"atr": channel.atr.hex().upper()}

    def get(tag: int) -> bytes | None:
        try:
            return issuer.get_data(tag)
        except CardError:
            return None

    raw_serial = get(Tag.CARD_SERIAL)
    info["serial"] = raw_serial.decode("ascii", "replace") if raw_serial else None
    raw_state = get(Tag.LIFE_CYCLE)
    state: LifeCycle | None = None
    if raw_state:
        try:
            state = LifeCycle(raw_state[0])
        except ValueError:
            state = None
    info["life_cycle"] = state.name.lower() if state else None
    for key, tag in (("municipality_code", Tag.MUNICIPALITY_CODE), ("expiry", Tag.EXPIRY)):
        raw = get(tag)
        info[key] = raw.decode("ascii", "replace") if raw else None
    raw_status = get(Tag.PIN_STATUS)
    status = PinStatus.from_bytes(raw_status) if raw_status and len(raw_status) == 2 else None

    applications: dict[str, bool] = {}
    pins: list[dict[str, Any]] = []
    for area in contract.AREAS:
        client = JpkiClient(channel) if area is contract.JPKI else area_client(channel, area)
        present = client.is_present()
        applications[area.name] = present
        if present:
            pins.extend(_pin_entry(client, pin, state, status) for pin in area.pins)
    info["applications"] = applications
    info["pins"] = pins
    info["card_info_record"] = _card_info_record(channel) if applications["common"] else None
    info["certificates"] = _certificates(JpkiClient(channel)) if applications["jpki"] else {}
    return info


def _card_info_record(channel: Channel) -> dict[str, Any] | None:
    """Record 1 of the 共通カードAP's EF 0001 (READ RECORD, no credential); None if unreadable."""
    try:
        record = CommonClient(channel).card_info()
    except CardError:
        return None
    return {"serial": record.serial, "municipality_code": record.municipality_code,
            "prefecture_code": record.prefecture_code, "expiry": record.expiry.isoformat()}


def _certificates(jpki: JpkiClient) -> dict[str, Any]:
    out: dict[str, Any] = {}
    availability: CertAvailability | None = None
    try:
        availability = jpki.cert_availability()
        out["token_label"] = jpki.token_label()
    except CardError as exc:
        out["token_label"] = None
        out["unavailable"] = str(exc)
    for kind in (CertKind.AUTH, CertKind.AUTH_CA, CertKind.SIGN, CertKind.SIGN_CA):
        name = kind.name.lower().replace("_", "-")
        if kind is CertKind.SIGN:
            if availability is not None and not availability.sign:
                out[name] = {"status": "absent"}
            else:
                out[name] = {"status": "protected (needs the signing password)"}
            continue
        try:
            out[name] = {"status": "present", **_certificate_summary(jpki.read_certificate(kind))}
        except FileEmpty:
            out[name] = {"status": "absent"}
        except SecurityStatusNotSatisfied:
            out[name] = {"status": "protected"}
        except (CardError, ValueError) as exc:
            out[name] = {"status": f"unavailable ({exc})"}
    return out


def format_info(info: dict[str, Any], reader: str | None = None) -> str:
    """The human-readable form of `card_info`."""
    lines = []
    if reader:
        lines.append(f"reader:        {reader}")
    lines.append(f"ATR:           {info.get('atr')}")
    lines.append(f"serial:        {info.get('serial') or '-'}")
    lines.append(f"life cycle:    {info.get('life_cycle') or '-'}")
    lines.append(f"municipality:  {info.get('municipality_code') or '-'}")
    lines.append(f"expiry:        {info.get('expiry') or '-'}")
    record = info.get("card_info_record")
    if record:
        lines.append(f"card-info record (共通カードAP): serial {record['serial']}, "
                     f"municipality {record['municipality_code']}, expiry {record['expiry']}")
    else:
        lines.append("card-info record (共通カードAP): -")
    lines.append("applications:")
    for name, present in info.get("applications", {}).items():
        lines.append(f"  {name:<18} {'present' if present else 'absent'}")
    lines.append("PINs and codes:")
    for pin in info.get("pins", []):
        if pin["tries_left"] is not None:
            state = f"{pin['tries_left']}/{pin['max_tries']} tries left"
            if pin["state"] == "blocked":
                state += " (blocked)"
        else:
            state = pin["state"]
        lines.append(f"  {pin['area']:<18} {pin['fid']} {pin['name']:<34} {state}")
    certs = info.get("certificates", {})
    if certs:
        lines.append(f"JPKI token:    {certs.get('token_label') or '-'}")
        lines.append("certificates:")
        for name in ("auth", "auth-ca", "sign", "sign-ca"):
            cert = certs.get(name)
            if not cert:
                continue
            if cert.get("subject"):
                lines.append(f"  {name:<8} {cert['subject']}")
                lines.append(f"  {'':<8} issuer {cert['issuer']}")
                lines.append(f"  {'':<8} valid {cert['not_before']} .. {cert['not_after']}")
            else:
                lines.append(f"  {name:<8} {cert['status']}")
    return "\n".join(lines)
