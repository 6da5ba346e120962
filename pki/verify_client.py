"""A small client of the verification service (`mynacard verify-serve`)."""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.request
from typing import Any

from pki.errors import VerificationError


class VerifyClient:
    """Calls the service with this relying party's bearer token; answers are dicts as in
    the service's OpenAPI description (``GET /openapi.json``)."""

    def __init__(self, url: str, token: str, *, cafile: str | None = None,
                 timeout: float = 30.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise VerificationError(f"not an http(s) URL: {url}")
        self.url, self.token, self.timeout = url.rstrip("/"), token, timeout
        self._context = ssl.create_default_context(cafile=cafile) if cafile else None

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        req = urllib.request.Request(
            self.url + path, data=json.dumps(body).encode(), method="POST",
            headers={"Content-Type": "application/json",
                     "Authorization": f"Bearer {self.token}"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout,  # noqa: S310
                                        context=self._context) as resp:
                answer = json.loads(resp.read(4 * 1024 * 1024))
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read(64 * 1024)).get("error", "")
            except (ValueError, AttributeError):
                message = ""
            raise VerificationError(f"the service refused (HTTP {exc.code}): {message}") \
                from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise VerificationError(f"cannot reach {self.url}: {exc}") from None
        if not isinstance(answer, dict):
            raise VerificationError("the service answered something other than an object")
        return answer

    def certificate(self, der: bytes, *, consent: bool = False) -> dict[str, Any]:
        return self._post("/v1/certificate", {"certificate": base64.b64encode(der).decode(),
                                              "consent": consent})

    def cms(self, signature: bytes, data: bytes | None = None, *,
            consent: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {"signature": base64.b64encode(signature).decode(),
                                "consent": consent}
        if data is not None:
            body["data"] = base64.b64encode(data).decode()
        return self._post("/v1/cms", body)

    def login_challenge(self, ttl: int = 300) -> dict[str, Any]:
        return self._post("/v1/login/challenge", {"ttl": ttl})

    def login(self, response: dict[str, Any]) -> dict[str, Any]:
        return self._post("/v1/login", {"response": response})
