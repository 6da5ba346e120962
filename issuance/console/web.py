"""What every console page shares: the server's state, the logged-in operator, CSRF,
role checks written to the audit log, language, and rendering."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from card.errors import CardError
from issuance.audit.log import AuditLog
from issuance.audit.operator import Acting, acting
from issuance.console.auth import (
    CardLogin,
    ConsoleSession,
    LoginMethod,
    PasswordLogin,
    SessionTable,
    same_token,
)
from issuance.console.i18n import pick, translator
from issuance.console.jobs import JobTable
from issuance.storage import Database

SESSION_COOKIE = "console_session"
PRE_COOKIE = "console_pre"  # CSRF token of the login form (no session yet)
PAD_COOKIE = "console_pad"  # the PIN pad browser bound to a pairing token
LANG_COOKIE = "lang"
TEMPLATES = Path(__file__).parent / "templates"
MAX_FORM = 8 << 20  # bytes: a photo upload fits

T = TypeVar("T")


class NeedLogin(Exception):
    """No (valid) session: the page answers with the login form."""


@dataclass
class Console:
    home: Path
    db_url: str
    db: Database
    roles: dict[str, tuple[str, ...]]
    tls: bool = False
    sessions: SessionTable = field(default_factory=SessionTable)
    jobs: JobTable = field(default_factory=JobTable)
    logins: dict[str, LoginMethod] = field(
        default_factory=lambda: {"password": PasswordLogin()})
    readers: Callable[[], list[str]] | None = None
    env: Environment = field(init=False)

    def __post_init__(self) -> None:
        self.env = Environment(loader=FileSystemLoader(str(TEMPLATES)),
                               autoescape=select_autoescape(["html"]), auto_reload=False)
        self.logins.setdefault("card", CardLogin(self.home, self.reader_names))

    def reader_names(self) -> list[str]:
        """The PC/SC readers of the console server (the counter PC's own readers)."""
        if self.readers is not None:
            return self.readers()
        try:
            from card.transport import list_readers

            return list_readers()
        except CardError:
            return []

    # -- who ---------------------------------------------------------------------------
    def session(self, request: Request) -> ConsoleSession | None:
        return self.sessions.get(request.cookies.get(SESSION_COOKIE), self.db)

    def staff(self, request: Request) -> ConsoleSession:
        session = self.session(request)
        if session is None:
            raise NeedLogin()
        return session

    def acting(self, session: ConsoleSession) -> Acting:
        return Acting(session.operator, session.role_text)

    def audit(self, session: ConsoleSession | None, *, operator: str | None = None,
              action: str, subject: str, outcome: str,
              detail: Mapping[str, Any] | None = None) -> None:
        who = Acting(session.operator, session.role_text) if session else None
        with acting(who):
            AuditLog(self.db).append(operator=operator or (session.operator if session
                                                           else "-"),
                                     action=action, subject=subject or "-", outcome=outcome,
                                     detail=detail)

    async def may(self, request: Request, session: ConsoleSession, action: str,
                  subject: str = "-") -> Response | None:
        """None when the operator's roles allow `action`; else the refusal page, after
        the refusal was written to the audit log (as the CLI does)."""
        needed = self.roles[action]
        if session.may(needed):
            return None
        await run_in_threadpool(
            self.audit, session, action=f"console.{action}", subject=subject,
            outcome="refused", detail={"refused_by": "operator rules",
                                       "needs": list(needed)})
        return self.render(request, "error.html", {
            "message_key": "forbidden",
            "detail": f"{session.operator} ({session.role_text}): "
                      f"{' / '.join(needed)}"}, status=403, session=session)

    # -- forms -------------------------------------------------------------------------
    async def form(self, request: Request, session: ConsoleSession) -> FormData:
        """The posted form, refused (403) unless it carries the session's CSRF token."""
        form = await self._form(request)
        if not same_token(_text(form.get("csrf_token")), session.csrf):
            raise HTTPException(403, "CSRF token missing or wrong")
        return form

    async def pre_form(self, request: Request) -> FormData:
        """The login form: its token must match the pre-session cookie (double submit)."""
        form = await self._form(request)
        cookie = request.cookies.get(PRE_COOKIE) or ""
        if not cookie or not same_token(_text(form.get("csrf_token")), cookie):
            raise HTTPException(403, "CSRF token missing or wrong")
        return form

    async def _form(self, request: Request) -> FormData:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_FORM:
            raise HTTPException(413, "form too large")
        return await request.form(max_files=2, max_fields=50)

    # -- pages -------------------------------------------------------------------------
    def lang(self, request: Request) -> str:
        return pick(request.query_params.get("lang") or request.cookies.get(LANG_COOKIE))

    def render(self, request: Request, template: str, context: Mapping[str, Any], *,
               status: int = 200, session: ConsoleSession | None = None) -> HTMLResponse:
        lang = self.lang(request)
        page = self.env.get_template(template).render(
            t=translator(lang), lang=lang, session=session,
            csrf=session.csrf if session else "", roles=self.roles,
            path=request.url.path, **context)
        response = HTMLResponse(page, status_code=status)
        if request.query_params.get("lang"):
            self.cookie(response, LANG_COOKIE, lang, httponly=False, max_age=365 * 86400)
        return response

    def cookie(self, response: Response, name: str, value: str, *, httponly: bool = True,
               max_age: int | None = None) -> None:
        response.set_cookie(name, value, max_age=max_age, httponly=httponly,
                            secure=self.tls, samesite="strict", path="/")

    def redirect(self, url: str) -> RedirectResponse:
        return RedirectResponse(url, status_code=303)

    def new_pre_token(self) -> str:
        return secrets.token_urlsafe(24)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def field_text(form: FormData, name: str, *, limit: int = 200) -> str:
    """A text field, stripped, at most `limit` characters (a file or absence is "")."""
    return _text(form.get(name)).strip()[:limit]
