"""The HTTP API for other programs: ``python -m digitrec serve`` (FastAPI on uvicorn).

    GET  /health       the server is up; the models it reads with
    POST /v1/predict   one digit in each picture sent   (multipart, field ``file``, repeated)
    POST /v1/read      every number in each picture sent

Each picture's answer is the CLI's JSON for it (``predict --json`` / ``read --json``):
``{"file": name, **prediction.to_dict()}``; one picture sent gives that object, several
give ``{"results": [...]}`` in the order sent. A request is answered whole or refused
whole: the first picture that cannot be read refuses it with ``{"error": ..., "file":
name}`` (400; 413 over a limit), so a 200 always carries an answer for every picture.

The limits are the library's (:mod:`digitrec.reading.decode`, the Upload page's too):
:data:`~digitrec.reading.decode.MAX_BYTES` a picture, checked from the size the upload
arrived with before it is read, and the pixel cap checked from the header. The body as a
whole is capped as it arrives (:class:`BodyLimit`, from ``Content-Length`` or by counting
a streamed body), so an oversized request is refused before it is stored.

One :class:`~digitrec.reading.digits.Recognizer` per server, made at startup (the
lifespan) unless the caller gives one, with its number networks loaded then rather than
on the first request. Reading runs in FastAPI's thread pool (the endpoints are plain
functions), never on the event loop; each network runs one batch at a time under its own
lock (:class:`digitrec.reading.engine.Network`: an interpreter holds one set of buffers),
so concurrent requests share the networks safely.

With ``$DIGITREC_API_KEY`` set, a request must carry the key (``X-API-Key: KEY`` or
``Authorization: Bearer KEY``), checked before its body is read; ``/health`` and the
OpenAPI pages (``/docs``, ``/openapi.json``) stay open: they read nothing.
Run without the CLI: ``uvicorn --factory digitrec.api:create_app``.
"""
from __future__ import annotations

import hmac
import inspect
import os
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import FastAPI, File, Request, Security, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, HTTPBearer
from pydantic import BaseModel
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException

from digitrec.reading import engine
from digitrec.reading.decode import FORMATS, MAX_BYTES, MAX_PIXELS, ImageError, ImageTooLarge, check_size, load_image
from digitrec.reading.digits import Recognizer

KEY_ENV = "DIGITREC_API_KEY"  # the key every request must carry, when set
MAX_FILES = 16  # pictures in one request: with MAX_BYTES each, the most a body may hold
FORM_OVERHEAD = 2**20  # room in a body for the multipart headers around its pictures


def _description(max_files: int) -> str:
    """The OpenAPI description: the contract a client needs, on the /docs page."""
    return inspect.cleandoc(f"""Read handwritten digits and numbers in pictures.

    Send pictures as `multipart/form-data`, each in a field named **`file`** (repeat the field
    for several; at most {max_files} a request, {MAX_BYTES // 2**20} MB and
    {MAX_PIXELS // 10**6} megapixels each; {", ".join(FORMATS)}).

    **Answers.** Each picture's answer is the JSON that `python -m digitrec predict --json` or
    `read --json` prints for it, with `file` the name the picture was sent with. One picture
    sent: that object. Several: `{{"results": [...]}}`, in the order sent.

    **Errors** are `{{"error": "why"}}` (with `file` when one picture is the cause): 400 a picture
    that cannot be read (the first such ends the request: a 200 answers every picture) or
    more than {max_files} pictures, 413 a picture or the request over its size limit, 422 no
    `file` field, 401 a missing or wrong API key, 503 a network missing on the server.

    **API key.** When the server has `$DIGITREC_API_KEY` set, send it as `X-API-Key: KEY` or
    `Authorization: Bearer KEY` (`/health` and these pages need none).""")


PICTURES = ("The pictures, each in a field named `file` (repeat it for several): "
            f"{', '.join(FORMATS)}, up to {MAX_BYTES // 2**20} MB each.")


class Error(BaseModel):
    """What every refusal answers."""

    error: str
    file: str | None = None


class Refused(Exception):
    """A request answered with ``{"error": message}`` (and the picture's name) and ``status``."""

    def __init__(self, status: int, message: str, file: str | None = None):
        super().__init__(message)
        self.status, self.message, self.file = status, message, file


def _refusal(status: int, message: str, file: str | None = None, headers=None) -> JSONResponse:
    body = {"error": message} | ({"file": file} if file is not None else {})
    return JSONResponse(body, status_code=status, headers=headers)


class BodyLimit:
    """Refuse a request whose body is over ``max_bytes`` with a JSON 413: at once from its
    ``Content-Length``, or when a streamed body's bytes pass it (nothing beyond is read).
    FastAPI's own ``max_body_size`` answers in plain text, and puts its 413 in place of any
    answer (the API key's 401) to a request that declares more."""

    def __init__(self, app, max_bytes: int, message: str):
        self.app, self.max_bytes, self.message = app, max_bytes, message

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            return await _refusal(413, self.message)(scope, receive, send)
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:  # re-raised by FastAPI's form parsing, answered by the handler
                raise HTTPException(413, self.message)
            return message

        await self.app(scope, counted, send)


def _carries(headers, key: bytes) -> bool | None:
    """Whether ``headers`` carry ``key`` (compared in constant time); None when they carry none."""
    given = headers.get("x-api-key")
    if given is None:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        given = token.strip() if scheme.lower() == "bearer" else None
    return None if given is None else hmac.compare_digest(given.encode(), key)


def _number_networks(recognizer: Recognizer) -> dict:
    """Where the detector and the recognizer were loaded from (loading them if not yet),
    None for one that is missing."""
    out = {}
    for name in ("detector", "recognizer"):
        try:
            out[name] = str(getattr(recognizer, name).path)
        except engine.ModelError:
            out[name] = None
    return out


def _answers(uploads: list[UploadFile], read) -> dict:
    """``read`` (a Recognizer's ``predict`` or ``read``) over each upload, as the CLI's JSON;
    every size is checked before any picture is decoded, each picture decoded when its
    turn comes (one in memory at a time)."""
    names = [upload.filename or f"file {i + 1}" for i, upload in enumerate(uploads)]
    for name, upload in zip(names, uploads):
        try:
            if upload.size is not None:
                check_size(upload.size)
        except ImageTooLarge as exc:
            raise Refused(413, str(exc), name) from None
    out = []
    for name, upload in zip(names, uploads):
        try:
            image = load_image(upload.file)
        except ImageError as exc:
            raise Refused(413 if isinstance(exc, ImageTooLarge) else 400, str(exc), name) from None
        out.append({"file": name, **read(image).to_dict()})
    return out[0] if len(out) == 1 else {"results": out}


def create_app(recognizer: Recognizer | None = None, *, model: str | os.PathLike | None = None,
               api_key: str | None = None, max_files: int = MAX_FILES) -> FastAPI:
    """The API as an ASGI app. ``recognizer``: the one to read with (default: loaded at
    startup from ``model``, default the shipped one); ``api_key``: the key requests must
    carry (default ``$DIGITREC_API_KEY``; empty: none); ``max_files``: pictures a request
    may hold."""
    key = (os.environ.get(KEY_ENV, "") if api_key is None else api_key).encode()
    max_body = max_files * MAX_BYTES + FORM_OVERHEAD
    too_large = (f"the request is larger than {max_body / 1e6:.0f} MB: send at most {max_files} pictures "
                 f"of up to {MAX_BYTES / 1e6:.0f} MB each")

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        loaded = recognizer or await run_in_threadpool(Recognizer.load, model)
        await run_in_threadpool(_number_networks, loaded)  # loaded now, not on the first picture
        app.state.recognizer = loaded
        yield

    app = FastAPI(title="digitrec", description=_description(max_files), lifespan=lifespan,
                  form_limits={"max_files": max_files})
    app.add_middleware(BodyLimit, max_bytes=max_body, message=too_large)  # inside the key's check below
    refusals = {status: {"model": Error, "description": why} for status, why in (
        (400, "A picture that cannot be read (not an image, empty, damaged), too many pictures, or a "
              "malformed form"),
        (401, "A missing or wrong API key"),
        (413, "A picture or the request over its size limit"),
        (422, "No `file` field"),
        (503, "A network the server lacks"))}
    # The key is checked by the middleware below, before the body is read; these declare it
    # in the OpenAPI schema (the docs' Authorize button) and check nothing themselves.
    documented_key = [Security(APIKeyHeader(name="X-API-Key", auto_error=False)),
                      Security(HTTPBearer(auto_error=False))] if key else []

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused):
        return _refusal(exc.status, exc.message, exc.file)

    @app.exception_handler(engine.ModelError)
    async def no_network(request: Request, exc: engine.ModelError):
        return _refusal(503, str(exc))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        return _refusal(exc.status_code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return _refusal(422, "send each picture as multipart/form-data in a field named 'file' "
                        f"({problems})")

    if key:
        open_paths = {app.openapi_url, app.docs_url, app.swagger_ui_oauth2_redirect_url, app.redoc_url, "/health"}

        @app.middleware("http")
        async def key_required(request: Request, call_next):
            if request.url.path in open_paths:
                return await call_next(request)
            carried = _carries(request.headers, key)
            if carried:
                return await call_next(request)
            return _refusal(401, "the API key is wrong" if carried is False else
                            "this server needs its API key: send it as 'X-API-Key: KEY' or "
                            "'Authorization: Bearer KEY'", headers={"WWW-Authenticate": "Bearer"})

    @app.get("/health", summary="Whether the server is up, and the models it reads with",
             description="The digit model's path and its card's test figure, and where the number "
                         "detector and recognizer were loaded from (null: missing, so /v1/read "
                         "answers 503). Needs no API key.")
    def health(request: Request) -> dict:
        loaded: Recognizer = request.app.state.recognizer
        return {"status": "ok", "digit_model": {"path": str(loaded.path), "test": loaded.card.get("test")},
                **_number_networks(loaded), "api_key_required": bool(key)}

    @app.post("/v1/predict", summary="Read one digit in each picture", responses=refusals,
              dependencies=documented_key,
              description="Each picture is read as one digit (any size, colour or polarity): "
                          "`digit`, `confidence`, the ten `probabilities` and `low_confidence`; "
                          "or `digit: null` and the `reason` when there is none.")
    def predict(request: Request, file: Annotated[list[UploadFile], File(description=PICTURES)]) -> dict:
        return _answers(file, request.app.state.recognizer.predict)

    @app.post("/v1/read", summary="Find and read every handwritten number in each picture",
              responses=refusals, dependencies=documented_key,
              description="A page, a photo, a cheque or a tight crop: `text` (the numbers joined by "
                          "a space) and each number's `text`, `box` [x, y, w, h], `confidence`, "
                          "`low_confidence` and `digits`, in reading order; or `text: null` and the "
                          "`reason` when there is none.")
    def read(request: Request, file: Annotated[list[UploadFile], File(description=PICTURES)]) -> dict:
        return _answers(file, request.app.state.recognizer.read)

    return app
