"""The console's Starlette application: routes per area, security headers, the login
redirect, and plain refusals (403 for a missing or wrong CSRF token)."""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from issuance.console import routes_counter, routes_pinpad, routes_staff
from issuance.console.auth import cli_roles
from issuance.console.web import Console, NeedLogin
from issuance.storage import Database

STATIC = Path(__file__).parent / "static"
SECURITY_HEADERS = [
    (b"content-security-policy",
     b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
     b"frame-ancestors 'none'; form-action 'self'; base-uri 'none'"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


class SecurityHeaders:
    def __init__(self, app: ASGIApp, *, tls: bool) -> None:
        self.app = app
        self.tls = tls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += SECURITY_HEADERS
                if not scope["path"].startswith("/static/"):
                    headers.append((b"cache-control", b"no-store"))
                if self.tls:
                    headers.append((b"strict-transport-security", b"max-age=31536000"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with)


def create_app(home: Path, db_url: str, db: Database, *, tls: bool = False,
               console: Console | None = None) -> Starlette:
    from issuance.console.queries import migrate_console

    migrate_console(db)
    console = console or Console(home=Path(home), db_url=db_url, db=db, roles=cli_roles(),
                                 tls=tls)

    async def need_login(request: Request, exc: Exception) -> Response:
        if request.method == "GET":
            return RedirectResponse("/login", status_code=303)
        return PlainTextResponse("log in first", status_code=403)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return PlainTextResponse(str(exc.detail), status_code=exc.status_code)

    app = Starlette(
        routes=[*routes_staff.routes(console), *routes_counter.routes(console),
                *routes_pinpad.routes(console),
                Mount("/static", StaticFiles(directory=str(STATIC)), name="static")],
        exception_handlers={NeedLogin: need_login, HTTPException: http_error})
    app.state.console = console
    app.add_middleware(SecurityHeaders, tls=tls)
    return app
