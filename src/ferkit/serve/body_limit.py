"""Cap a request's body while it is being read, so no upload is spooled past the limit.

Starlette parses a multipart form, and spools each file to a temporary file, before the
endpoint runs: a per-file check inside the endpoint comes only after a 300 MB upload has
been written to disk. This ASGI middleware counts the body's bytes as they arrive. It
refuses a request whose Content-Length is over the limit before reading any of it, and
one that sends more than the limit without declaring it as soon as it passes the limit:
it answers 413 itself and tells the application that the client went away.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable], Awaitable[None]]


class BodyLimit:
    """Refuse HTTP request bodies longer than `limit(path)` bytes with 413 and a JSON
    `detail` naming the limit in MB."""

    def __init__(self, app: ASGIApp, limit: Callable[[str], int]) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit(scope["path"])
        declared = dict(scope.get("headers", [])).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await _refuse(send, limit)
            return
        received, refused = 0, False

        async def limited_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    await _refuse(send, limit)
                    return {"type": "http.disconnect"}  # the app stops reading here
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:  # after our 413, whatever the app answers is dropped
                await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not refused:
                raise  # a disconnect we caused is not an error


async def _refuse(send, limit: int) -> None:
    body = json.dumps(
        {"detail": f"request body over the limit of {limit / (1 << 20):g} MB"}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
