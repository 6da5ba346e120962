"""Staff pages that act: take an application, issue a card, hand it over (the holder sets
the PINs on the PIN pad), PIN reset, card update, loss report, re-issue.

Each calls the function the CLI command of the same action calls, checked against that
command's roles; those functions write their own audit entries (refusals too).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from card.errors import CardError
from issuance.applications.express import ExpressReason
from issuance.applications.rules import ApplicationRequest
from issuance.console.jobs import Job
from issuance.console.web import Console, field_text
from issuance.errors import IssuanceError
from issuance.personalisation.pins import PinKind
from issuance.registry.dates import age_on, japan_date, utc_now
from issuance.storage import open_database
from issuance.workflow.machine import Refused

REPRESENTATIVE_AGE = 15  # under 15 (and adult wards) come with the legal representative


def _readers(console: Console) -> list[str]:
    return console.reader_names()


def routes(console: Console) -> list[Route]:
    # -- applications -----------------------------------------------------------------
    async def apply_page(request: Request) -> Response:
        session = console.staff(request)
        return console.render(request, "apply.html", {
            "reasons": list(ExpressReason), "result": None,
            "code": request.query_params.get("resident", "")}, session=session)

    async def apply(request: Request) -> Response:
        session = console.staff(request)
        form = await console.form(request, session)
        code = field_text(form, "resident_code", limit=20)
        refused = await console.may(request, session, "apply", code)
        if refused is not None:
            return refused
        express_field = field_text(form, "express", limit=40)
        reason = None
        if express_field not in ("", "auto"):
            try:
                reason = ExpressReason.parse(express_field)
            except ValueError:
                reason = None
        event_text = field_text(form, "event_date", limit=10)
        try:
            event = date.fromisoformat(event_text) if event_text else None
        except ValueError:
            event = None
        photo: bytes | None = None
        upload = form.get("photo")
        error: str | None = None
        if isinstance(upload, UploadFile) and upload.filename:
            raw = await upload.read()
            if raw:
                try:
                    from card import images

                    # decoding and encoding take a while: off the event loop, so the
                    # other operators' pages do not wait for it
                    photo = await run_in_threadpool(images.photo_from_file, raw)
                except (ValueError, OSError) as exc:
                    error = f"invalid photo: {exc}"
        representative = field_text(form, "representative")
        proof = field_text(form, "representative_proof")
        request_ = ApplicationRequest(
            resident_code=code, express=reason, express_requested=express_field != "",
            event_date=event, certificates=not form.get("no_certificates"),
            signing_certificate=not form.get("no_signing"))

        def run() -> dict[str, Any]:
            from issuance.applications.intake import take_application
            from issuance.applications.photos import put_photo
            from issuance.audit.operator import acting
            from issuance.registry.store import get_resident

            with acting(console.acting(session)):
                with console.db.transaction() as tx:
                    resident = get_resident(tx, code)
                if resident is not None and not representative and (
                        resident.adult_ward or age_on(resident.birth_date,
                                                      japan_date(utc_now()))
                        < REPRESENTATIVE_AGE):
                    console.audit(session, action="application.apply", subject=code,
                                  outcome="refused",
                                  detail={"rule": "4.3", "reason": "the legal representative"
                                          " was not recorded"})
                    return {"refusal": {"rule": "4.3", "message":
                                        "under 15 or an adult ward: record the legal "
                                        "representative who came with the applicant"}}
                result = take_application(console.db, request_, operator=session.operator)
                out = result.to_json()
                app = result.application
                if app is not None and photo is not None and not app.photo_less:
                    put_photo(console.db, app.id, photo)
                    out["photo"] = True
                if app is not None and representative:
                    console.audit(session, action="application.representative",
                                  subject=app.id, outcome="done",
                                  detail={"representative": representative,
                                          "proof": proof or None})
                return out

        result = {"refusal": {"rule": "-", "message": error}} if error else \
            await run_in_threadpool(run)
        return console.render(request, "apply.html", {
            "reasons": list(ExpressReason), "result": result, "code": code},
            status=200 if not result.get("refusal") else 422, session=session)

    # -- issue ------------------------------------------------------------------------
    async def issue_page(request: Request) -> Response:
        session = console.staff(request)
        return console.render(request, "issue.html", {
            "application": request.query_params.get("application", ""),
            "readers": await run_in_threadpool(_readers, console)}, session=session)

    async def issue(request: Request) -> Response:
        session = console.staff(request)
        form = await console.form(request, session)
        app_id = field_text(form, "application", limit=40).upper()
        reader = field_text(form, "reader")
        refused = await console.may(request, session, "issue", app_id)
        if refused is not None:
            return refused

        def body(job: Job) -> dict[str, Any]:
            from issuance.workflow.center import Center
            from issuance.workflow.issue import Issuer

            with open_database(console.db_url) as db, \
                    Center.open(Path(console.home)) as center:
                result = Issuer(db, center, operator=session.operator,
                                progress=job.progress).issue(app_id, reader)
            return result.to_json()

        job = console.jobs.start("issue", app_id, console.acting(session), body)
        return console.redirect(f"/jobs/{job.id}")

    # -- jobs -------------------------------------------------------------------------
    def _job(request: Request) -> Job | None:
        session = console.staff(request)
        job = console.jobs.get(request.path_params["job"])
        if job is None or job.operator != session.operator:
            return None
        return job

    async def job_page(request: Request) -> Response:
        session = console.staff(request)
        job = _job(request)
        if job is None:
            return console.render(request, "error.html", {"message_key": "none",
                                                          "detail": "job"},
                                  status=404, session=session)
        pad_url = None
        if job.pad is not None:
            pad_url = str(request.url_for("pinpad", token=job.pad.token))
        return console.render(request, "job.html", {"job": job.to_json(), "pad_url": pad_url},
                              session=session)

    async def job_json(request: Request) -> Response:
        job = _job(request)
        if job is None:
            return JSONResponse({"error": "no such job"}, status_code=404)
        return JSONResponse(job.to_json(), headers={"Cache-Control": "no-store"})

    # -- hand-over and the operations that need the PIN pad -----------------------------
    async def handover_page(request: Request) -> Response:
        session = console.staff(request)
        return console.render(request, "handover.html", {
            "readers": await run_in_threadpool(_readers, console),
            "kinds": [k.value for k in PinKind]}, session=session)

    async def _identity(session: Any, action: str, reader: str, ref: str
                        ) -> tuple[str | None, Refused | None]:
        from issuance.counter.operations import identity_reference

        try:
            return identity_reference(ref), None
        except Refused as exc:
            await run_in_threadpool(console.audit, session, action=action, subject=reader,
                                    outcome="refused",
                                    detail={"rule": exc.rule, "reason": exc.message})
            return None, exc

    def _refusal_page(request: Request, session: Any, exc: Refused) -> Response:
        return console.render(request, "error.html", {
            "message_key": "refused", "detail": f"({exc.rule}) {exc.message}"},
            status=422, session=session)

    async def handover(request: Request) -> Response:
        session = console.staff(request)
        form = await console.form(request, session)
        reader = field_text(form, "reader")
        refused = await console.may(request, session, "handover", reader)
        if refused is not None:
            return refused
        ref, exc = await _identity(session, "activate", reader,
                                   field_text(form, "identity_check", limit=300))
        if exc is not None:
            return _refusal_page(request, session, exc)
        representative = {k: v for k in ("representative", "representative_proof")
                          if (v := field_text(form, k))}

        def body(job: Job) -> dict[str, Any]:
            from issuance.workflow.activate import Activator

            assert job.pad is not None
            pad = job.pad
            with open_database(console.db_url) as db:
                serial, app_id = _card_in(db, reader)
                console.audit(session, action="handover.identity-check",
                              subject=app_id or reader, outcome="done",
                              detail={"identity_check": ref, "card_serial": serial,
                                      "reader": reader, **representative})
                result = Activator(db, operator=session.operator, progress=job.progress
                                   ).activate(reader, lambda kind: pad.supply(kind, "set"))
            return result.to_json()

        job = console.jobs.start("handover", reader, console.acting(session), body, pad=True)
        return console.redirect(f"/jobs/{job.id}")

    async def pin_reset(request: Request) -> Response:
        session = console.staff(request)
        form = await console.form(request, session)
        reader = field_text(form, "reader")
        refused = await console.may(request, session, "pin-reset", reader)
        if refused is not None:
            return refused
        try:
            kind = PinKind(field_text(form, "pin"))
        except ValueError:
            return console.redirect("/counter")
        ref, exc = await _identity(session, "pin.reset", reader,
                                   field_text(form, "identity_check", limit=300))
        if exc is not None:
            return _refusal_page(request, session, exc)

        def body(job: Job) -> dict[str, Any]:
            from issuance.counter.operations import Counter
            from issuance.workflow.center import Center

            assert job.pad is not None
            job.progress(f"waiting for the holder's new {kind.value} PIN on the PIN pad")
            new = job.pad.supply(kind, "set")
            with open_database(console.db_url) as db, \
                    Center.open(Path(console.home)) as center:
                result = Counter(db, operator=session.operator, center=center,
                                 progress=job.progress).reset_pin(
                    reader, kind, identity_check=ref, new_pin=new)
            return result.to_json()

        job = console.jobs.start("pin-reset", reader, console.acting(session), body, pad=True)
        return console.redirect(f"/jobs/{job.id}")

    async def card_update(request: Request) -> Response:
        session = console.staff(request)
        form = await console.form(request, session)
        reader = field_text(form, "reader")
        refused = await console.may(request, session, "card-update", reader)
        if refused is not None:
            return refused
        ref, exc = await _identity(session, "card.update", reader,
                                   field_text(form, "identity_check", limit=300))
        if exc is not None:
            return _refusal_page(request, session, exc)

        def body(job: Job) -> dict[str, Any]:
            from issuance.counter.operations import Counter
            from issuance.workflow.center import Center

            assert job.pad is not None
            with open_database(console.db_url) as db:
                signing = _has_signing(db, reader)
            job.progress("waiting for the holder's PINs on the PIN pad")
            text_pin = job.pad.supply(PinKind.TEXT, "verify")
            sign = job.pad.supply(PinKind.SIGN, "verify") if signing else None
            with open_database(console.db_url) as db, \
                    Center.open(Path(console.home)) as center:
                result = Counter(db, operator=session.operator, center=center,
                                 progress=job.progress).update_card(
                    reader, identity_check=ref, text_pin=text_pin, sign_password=sign)
            return result.to_json()

        job = console.jobs.start("card-update", reader, console.acting(session), body,
                                 pad=True)
        return console.redirect(f"/jobs/{job.id}")

    async def report_loss(request: Request) -> Response:
        session = console.staff(request)
        form = await console.form(request, session)
        app_id = field_text(form, "application", limit=40).upper() or None
        code = field_text(form, "resident_code", limit=20) or None
        refused = await console.may(request, session, "report-loss", app_id or code or "-")
        if refused is not None:
            return refused

        def run() -> dict[str, Any]:
            from issuance.audit.operator import acting
            from issuance.counter.operations import Counter
            from issuance.workflow.center import Center

            with acting(console.acting(session)), Center.open(Path(console.home)) as center:
                try:
                    return Counter(console.db, operator=session.operator, center=center
                                   ).report_loss(application_id=app_id, resident_code=code,
                                                 hold=bool(form.get("hold")),
                                                 identity_check=field_text(
                                                     form, "identity_check")).to_json()
                except Refused as exc:
                    return {"refusal": {"rule": exc.rule, "message": exc.message}}

        return await _done(request, session, "report_loss", run)

    async def reissue(request: Request) -> Response:
        session = console.staff(request)
        form = await console.form(request, session)
        code = field_text(form, "resident_code", limit=20)
        refused = await console.may(request, session, "reissue", code)
        if refused is not None:
            return refused

        def run() -> dict[str, Any]:
            from issuance.audit.operator import acting
            from issuance.counter.operations import Counter

            with acting(console.acting(session)):
                try:
                    return Counter(console.db, operator=session.operator).reissue(
                        code).to_json()
                except Refused as exc:
                    return {"refusal": {"rule": exc.rule, "message": exc.message}}

        return await _done(request, session, "reissue", run)

    async def _done(request: Request, session: Any, what: str, run: Any) -> Response:
        try:
            result = await run_in_threadpool(run)
        except (IssuanceError, CardError) as exc:
            result = {"refusal": {"rule": "-", "message": f"{type(exc).__name__}: {exc}"}}
        return console.render(request, "counter.html", {
            "readers": await run_in_threadpool(_readers, console),
            "kinds": [k.value for k in PinKind], "what": what, "result": result},
            status=200 if not result.get("refusal") else 422, session=session)

    async def counter_page(request: Request) -> Response:
        session = console.staff(request)
        return console.render(request, "counter.html", {
            "readers": await run_in_threadpool(_readers, console),
            "kinds": [k.value for k in PinKind], "what": None, "result": None},
            session=session)

    return [
        Route("/apply", apply_page, methods=["GET"]),
        Route("/apply", apply, methods=["POST"]),
        Route("/issue", issue_page, methods=["GET"]),
        Route("/issue", issue, methods=["POST"]),
        Route("/jobs/{job}", job_page, methods=["GET"]),
        Route("/jobs/{job}/state", job_json, methods=["GET"]),
        Route("/handover", handover_page, methods=["GET"]),
        Route("/handover", handover, methods=["POST"]),
        Route("/counter", counter_page, methods=["GET"]),
        Route("/counter/pin-reset", pin_reset, methods=["POST"]),
        Route("/counter/card-update", card_update, methods=["POST"]),
        Route("/counter/report-loss", report_loss, methods=["POST"]),
        Route("/counter/reissue", reissue, methods=["POST"]),
    ]


def _card_in(db: Any, reader: str) -> tuple[str, str | None]:
    """The serial of the card in `reader` and its application here (None if unknown)."""
    from card.issuer import IssuerClient
    from card.transport import PcscTransport
    from issuance.workflow import records

    with PcscTransport(reader) as t:
        serial = IssuerClient(t).serial()
    with db.transaction() as tx:
        card = records.get_card(tx, serial)
    return serial, card.application_id if card else None


def _has_signing(db: Any, reader: str) -> bool:
    """Whether the card in `reader` has a current signing certificate (its update then
    needs the holder's signing password)."""
    from issuance.workflow import records

    _, app_id = _card_in(db, reader)
    if app_id is None:
        return False
    with db.transaction() as tx:
        return any(c.kind == "signing" for c in records.certificates_of(tx, app_id, "current"))
