"""Staff pages that read: logging in and out, today's work, search, a record's history,
daily statistics (with charts and CSV)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from issuance.audit.log import AuditLog
from issuance.audit.operator import Acting, acting
from issuance.console import queries
from issuance.console.auth import LoginRefused, Proof
from issuance.console.charts import bar_chart
from issuance.console.i18n import translator
from issuance.console.web import PRE_COOKIE, SESSION_COOKIE, Console, field_text
from issuance.errors import IssuanceError
from issuance.operators import OperatorStore
from issuance.operators.cards import CARD_LOGIN
from pki.errors import PkiError


def routes(console: Console) -> list[Route]:
    def login_form(request: Request, *, error: str | None = None, status: int = 200,
                   reader: str = "") -> Response:
        token = console.new_pre_token()
        response = console.render(request, "login.html", {
            "pre_csrf": token, "methods": list(console.logins), "error": error,
            "readers": console.reader_names() if "card" in console.logins else [],
            "reader": reader}, status=status)
        console.cookie(response, PRE_COOKIE, token)
        return response

    async def login_page(request: Request) -> Response:
        if console.session(request) is not None:
            return console.redirect("/")
        return await run_in_threadpool(login_form, request)

    async def login(request: Request) -> Response:
        form = await console.pre_form(request)
        method = console.logins.get(field_text(form, "method") or "password")
        if method is None:
            return console.redirect("/login")
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        reader = field_text(form, "reader")

        def check() -> Proof:
            return method.authenticate(OperatorStore(console.db), fields)

        try:
            proof = await run_in_threadpool(check)
        except IssuanceError as exc:
            message = str(exc)
            if isinstance(exc, LoginRefused):
                await run_in_threadpool(refused, exc, method.name, reader)
                if exc.key:
                    message = translator(console.lang(request))[exc.key].format(**exc.params)
            return await run_in_threadpool(
                lambda: login_form(request, error=message, status=401, reader=reader))
        session = console.sessions.open(proof, method.name)
        await run_in_threadpool(console.audit, session, action="console.login",
                                subject=proof.operator.name, outcome="done",
                                detail={"method": method.name, **proof.detail})
        done = console.redirect("/")
        console.cookie(done, SESSION_COOKIE, session.id)
        done.delete_cookie(PRE_COOKIE, path="/")
        return done

    def refused(exc: LoginRefused, method: str, reader: str) -> None:
        """A refused card login in the audit log, as `mynacard login --card` records
        one: nobody proved yet (role `claimed`), why in one line (no PIN, ever)."""
        with acting(Acting(CARD_LOGIN, "claimed")):
            AuditLog(console.db).append(
                operator=CARD_LOGIN, action="console.login", subject=CARD_LOGIN,
                outcome=exc.outcome, detail={"method": method, "reader": reader[:200],
                                             "error": str(exc)[:500]})

    async def logout(request: Request) -> Response:
        session = console.staff(request)
        await console.form(request, session)
        console.sessions.close(session.id)
        await run_in_threadpool(console.audit, session, action="console.logout",
                                subject=session.operator, outcome="done")
        response = console.redirect("/login")
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    async def dashboard(request: Request) -> Response:
        session = console.staff(request)
        work = await run_in_threadpool(queries.dashboard, console.db)
        return console.render(request, "dashboard.html", {"work": work,
                                                          "jobs": console.jobs.running()},
                              session=session)

    async def search(request: Request) -> Response:
        session = console.staff(request)
        q = request.query_params.get("q", "")[:100]
        found = await run_in_threadpool(queries.search, console.db, q) if q.strip() else None
        return console.render(request, "search.html", {"q": q, "found": found},
                              session=session)

    async def record(request: Request) -> Response:
        session = console.staff(request)
        kind = request.path_params["kind"]
        if kind not in ("resident", "application", "card", "certificate"):
            return console.render(request, "error.html", {"message_key": "none",
                                                          "detail": kind},
                                  status=404, session=session)
        found = await run_in_threadpool(queries.record, console.db, kind,
                                        request.path_params["key"][:64])
        if found is None:
            return console.render(request, "error.html", {"message_key": "none",
                                                          "detail": request.path_params["key"]},
                                  status=404, session=session)
        return console.render(request, "record.html", {"r": found}, session=session)

    def _stats(days: int) -> dict[str, Any]:
        store = None
        try:
            from issuance.workflow.center import CenterConfig
            from pki.store import open_readonly_store

            store = open_readonly_store(CenterConfig.load(Path(console.home)).store)
        except (IssuanceError, PkiError, OSError, ValueError):
            store = None
        try:
            return queries.statistics(console.db, days=days, store=store)
        finally:
            if store is not None:
                store.close()

    def _days(request: Request) -> int:
        raw = request.query_params.get("days", "14")
        return max(1, min(int(raw), 366)) if raw.isdigit() else 14

    async def stats(request: Request) -> Response:
        session = console.staff(request)
        data = await run_in_threadpool(_stats, _days(request))
        t = translator(console.lang(request))
        labels = [d["day"] for d in data["days"]]
        issued = bar_chart(f"{t['issued']} / {t['express']}", labels, [
            (t["issued"], [d["issued"] for d in data["days"]], "#3367d6"),
            (t["express"], [d["express"] for d in data["days"]], "#e8710a")])
        lead = bar_chart(t["lead_time"], labels, [
            (t["days"], [d["express_lead_days"] or 0 for d in data["days"]], "#188038")])
        reasons = sorted(data["revoked_by_reason"])
        revoked = bar_chart(t["by_reason"], reasons or ["-"], [
            (t["revoked"], [data["revoked_by_reason"][r] for r in reasons] or [0], "#c5221f")],
            dates=False)
        return console.render(request, "stats.html", {
            "data": data, "charts": [issued, revoked, lead], "days": _days(request)},
            session=session)

    async def stats_csv(request: Request) -> Response:
        console.staff(request)
        data = await run_in_threadpool(_stats, _days(request))
        return Response(queries.statistics_csv(data), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition":
                                 'attachment; filename="mynacard-statistics.csv"'})

    return [
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/", dashboard, methods=["GET"]),
        Route("/search", search, methods=["GET"]),
        Route("/record/{kind}/{key}", record, methods=["GET"]),
        Route("/stats", stats, methods=["GET"]),
        Route("/stats.csv", stats_csv, methods=["GET"]),
    ]
