"""The holder's PIN pad: a page of its own (a second screen or a tablet), opened with the
one-time pairing token of one hand-over, PIN reset or card update. The first browser that
opens the token is bound to it (a cookie); any other is refused. It shows which PIN is
asked for, takes each new PIN twice and hands it straight to the running action. The
clerk's pages never see a PIN: they are told only which PIN the pad is asking for.
"""

from __future__ import annotations

import secrets

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from issuance.console.auth import same_token
from issuance.console.jobs import Job
from issuance.console.web import PAD_COOKIE, Console, field_text
from issuance.personalisation.pins import PIN_KINDS, PinKind

ERRORS = {"mismatch": ("2回の入力が一致しません", "The two entries differ"),
          "not asked": ("この暗証番号は求められていません", "This PIN is not asked for"),
          "empty": ("入力してください", "Enter the PIN"),
          "format": ("形式が正しくありません（規則3.1）", "Wrong format (rule 3.1)")}


def routes(console: Console) -> list[Route]:
    def _pad(request: Request) -> tuple[Job, str | None]:
        job = console.jobs.by_pad(request.path_params["token"])
        if job is None or job.pad is None:
            raise HTTPException(404, "this PIN pad link is no longer valid")
        device = request.cookies.get(PAD_COOKIE)
        if job.pad.device is not None and not same_token(device, job.pad.device):
            raise HTTPException(403, "this PIN pad link is open on another screen")
        return job, device

    async def pad_page(request: Request) -> Response:
        job, device = _pad(request)
        assert job.pad is not None
        new_device = None
        if job.pad.device is None:
            new_device = secrets.token_urlsafe(24)
            job.pad.device = new_device
        asking = job.pad.asking
        response = console.render(request, "pinpad.html", {
            "token": job.pad.token, "pad_csrf": job.pad.csrf,
            "kind": asking[0].value if asking else None,
            "mode": asking[1] if asking else None,
            "digits": asking is not None and asking[0] is not PinKind.SIGN,
            "title": PIN_KINDS[asking[0]].title if asking else None,
            "error": request.query_params.get("error"), "state": job.state,
            "errors": ERRORS})
        response.headers["Cache-Control"] = "no-store"
        if new_device is not None:
            console.cookie(response, PAD_COOKIE, new_device)
        return response

    async def pad_state(request: Request) -> Response:
        job, _ = _pad(request)
        assert job.pad is not None
        asking = job.pad.asking
        return JSONResponse({"asking": asking[0].value if asking else None,
                             "state": job.state}, headers={"Cache-Control": "no-store"})

    async def pad_enter(request: Request) -> Response:
        job, _ = _pad(request)
        assert job.pad is not None
        form = await request.form(max_files=0, max_fields=10)
        if job.pad.device is None or not same_token(field_text(form, "csrf_token", limit=100),
                                                    job.pad.csrf):
            raise HTTPException(403, "CSRF token missing or wrong")
        try:
            kind = PinKind(field_text(form, "kind"))
        except ValueError:
            raise HTTPException(400, "no such PIN") from None
        first = field_text(form, "pin", limit=32)
        second = field_text(form, "pin2", limit=32)
        problem = job.pad.deliver(kind, first, second or None)
        url = f"/pinpad/{job.pad.token}"
        if problem is not None:
            code = problem if problem in ERRORS else "format"
            url += f"?error={code}"
        response = console.redirect(url)
        response.headers["Cache-Control"] = "no-store"
        return response

    return [
        Route("/pinpad/{token}", pad_page, methods=["GET"], name="pinpad"),
        Route("/pinpad/{token}", pad_enter, methods=["POST"]),
        Route("/pinpad/{token}/state", pad_state, methods=["GET"]),
    ]
