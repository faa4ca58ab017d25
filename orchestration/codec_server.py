"""The remote codec endpoint for the Temporal Web UI and CLI, for admins only: Starlette routes to mount
in the Streamlit server. The browser calls it directly, so decrypted data never passes through Temporal.

`POST <prefix>/decode` and `POST <prefix>/encode` take and return `{"payloads": [...]}` (the protobuf JSON
of `temporal.api.common.v1.Payloads`, as the UI and `temporal --codec-endpoint` send it).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence

from google.protobuf import json_format
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from temporalio.api.common.v1 import Payloads
from temporalio.converter import PayloadCodec

from orchestration.codec import PayloadDecodeError

# One request carries at most a few payloads of <= 2 MiB each (Temporal's limit), base64 in JSON.
MAX_BODY_BYTES = 16 * 1024 * 1024
ALLOWED_HEADERS = "content-type, x-namespace, authorization"

# True: allowed. False: signed in but not allowed (403). None: not signed in (401).
Authorize = Callable[[Request], bool | None | Awaitable[bool | None]]


def codec_routes(
    codec_factory: Callable[[], PayloadCodec], authorize: Authorize, allowed_origins: Sequence[str], prefix: str = "/codec"
) -> list[Route]:
    """Routes for `<prefix>/decode` and `<prefix>/encode`.

    `codec_factory` is called per request (cache it yourself if building it is costly). `authorize`
    gets the Starlette request (cookies, headers) of every POST and answers as `Authorize` says; it may
    be async. CORS answers only the exact `allowed_origins` (the Temporal UI's), with credentials, so the
    UI can send the user's cookie; a browser request from any other origin is refused.
    """
    origins = frozenset(o.rstrip("/") for o in allowed_origins)

    def with_cors(request: Request, response: Response) -> Response:
        origin = request.headers.get("origin")
        if origin in origins:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers["Vary"] = "Origin"
        response.headers["Cache-Control"] = "no-store"
        return response

    def error(request: Request, status: int, message: str) -> Response:
        return with_cors(request, JSONResponse({"error": message}, status_code=status))

    def endpoint(operation: str) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            origin = request.headers.get("origin")
            if origin is not None and origin not in origins:
                return JSONResponse({"error": "This origin may not use the codec."}, status_code=403)
            if request.method == "OPTIONS":  # preflight: carries no cookie, so no authorization yet
                return with_cors(
                    request,
                    Response(
                        status_code=204,
                        headers={
                            "Access-Control-Allow-Methods": "POST, OPTIONS",
                            "Access-Control-Allow-Headers": ALLOWED_HEADERS,
                            "Access-Control-Max-Age": "600",
                        },
                    ),
                )
            if operation == "encode" and await _nothing_to_encode(request):
                # The CLI's `workflow query` encodes its (empty) arguments before asking: encoding nothing
                # needs no key and mints nothing a worker would accept, so a decode-only token may do it.
                return with_cors(request, Response("{}", media_type="application/json"))
            verdict = authorize(request)
            if inspect.isawaitable(verdict):
                verdict = await verdict
            if verdict is None:
                return error(request, 401, "Sign in to TrainEasy as an admin to decode Temporal data.")
            if verdict is not True:
                return error(request, 403, "Only TrainEasy admins may use the codec.")
            if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
                return error(request, 415, "Send the payloads as application/json.")
            try:
                payloads = json_format.Parse(await request.body(), Payloads())
            except (json_format.ParseError, UnicodeDecodeError) as exc:
                return error(request, 400, f"Not a JSON Payloads message: {exc}")
            try:
                result = await getattr(codec_factory(), operation)(payloads.payloads)
            except PayloadDecodeError as exc:
                return error(request, 400, str(exc))
            body = json_format.MessageToJson(Payloads(payloads=result))
            return with_cors(request, Response(body, media_type="application/json"))

        handle.__name__ = f"codec_{operation}"
        return handle

    async def _nothing_to_encode(request: Request) -> bool:
        try:
            return not json_format.Parse(await request.body(), Payloads()).payloads
        except (json_format.ParseError, UnicodeDecodeError):
            return False

    return [
        Route(f"{prefix}/{op}", endpoint(op), methods=["POST", "OPTIONS"], max_body_size=MAX_BODY_BYTES)
        for op in ("decode", "encode")
    ]
