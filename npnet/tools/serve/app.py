"""The web application: the page's three files and a JSON API, on Starlette.

    GET  /                  the page (index.html); /static/app.js and /static/style.css
    GET  /api/run           the run's summary: name, test accuracy, layers, limits
    POST /api/predict       a PNG or JPEG (Content-Type image/png or image/jpeg), or JSON
                            {"image": 28×28 numbers in [0, 1]}; answers the probabilities,
                            the class, the 28×28 image the network saw and, for a CNN, the
                            first convolution's feature maps

Every mistake a request can make is a 4xx with {"error": "..."}: 400 a body that is not
a PNG/JPEG image or not the JSON described, 404 an unknown path, 405 a wrong method, 413
a body over MAX_BODY_BYTES, 415 any other Content-Type, 422 an image with no ink. Anything
else is a bug: it is logged with its traceback on the server and answered with a 500 JSON
error, and the server keeps serving.

The static files are read once, at start, from the package; a request picks one of them
by a fixed name and can never name a file on disk.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from npnet.tools.serve.model import BadRequest, ServedRun

MAX_BODY_BYTES = 4 * 1024 * 1024  # 4 MiB: a phone photo; the page's own drawings are ~2 kB
IMAGE_TYPES = ("image/png", "image/jpeg")
JSON_TYPE = "application/json"
STATIC_FILES = {  # URL path -> (file in npnet/tools/serve/static, media type)
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/static/style.css": ("style.css", "text/css; charset=utf-8"),
}


def create_app(served: ServedRun, max_body_bytes: int = MAX_BODY_BYTES) -> Starlette:
    """The application serving `served`, one run's network, and nothing else."""
    # A Response holds only its bytes and headers, so one answers every request for its file.
    static = {
        path: Response(read_static(name), media_type=media, headers={"Cache-Control": "no-cache"})
        for path, (name, media) in STATIC_FILES.items()
    }
    run_summary = served.summary() | {"max_body_bytes": max_body_bytes}

    async def page(request: Request) -> Response:
        return static[request.url.path]

    async def run(request: Request) -> Response:
        return JSONResponse(run_summary)

    async def predict(request: Request) -> Response:
        kind = content_type(request)
        body = await read_body(request, max_body_bytes)
        if not body:
            raise BadRequest(400, "the request has no body: send a PNG/JPEG image or JSON")
        if kind == JSON_TYPE:
            image = image_from_json(body)
            answer = await run_in_threadpool(served.predict_array, image)
        else:
            answer = await run_in_threadpool(served.predict_upload, body)
        return JSONResponse(answer)

    routes = [Route(path, page) for path in STATIC_FILES]
    routes += [Route("/api/run", run), Route("/api/predict", predict, methods=["POST"])]
    handlers = {BadRequest: bad_request, HTTPException: http_error, Exception: server_error}
    return Starlette(routes=routes, exception_handlers=handlers)


def read_static(name: str) -> bytes:
    return resources.files("npnet.tools.serve").joinpath("static", name).read_bytes()


def content_type(request: Request) -> str:
    """The request's media type (parameters such as charset dropped), if /api/predict takes
    it; 415 otherwise."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in (*IMAGE_TYPES, JSON_TYPE):
        accepted = ", ".join((*IMAGE_TYPES, JSON_TYPE))
        raise BadRequest(415, f"Content-Type must be one of {accepted}, got {kind or 'none'!r}")
    return kind


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refused with 413 as soon as it is known to exceed `limit` bytes: from
    Content-Length before reading anything, or while reading a body sent without one."""
    declared = request.headers.get("content-length", "")
    too_large = BadRequest(413, f"the body is over the limit of {limit:,} bytes")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")


def image_from_json(body: bytes) -> np.ndarray:
    """{"image": 28×28 numbers in [0, 1]} as a (28, 28) float32 array; 400 for anything else."""
    try:
        document = json.loads(body, parse_constant=reject_constant)
    except (ValueError, UnicodeDecodeError) as error:
        raise BadRequest(400, f"malformed JSON: {error}") from None
    except RecursionError:  # thousands of nested brackets
        raise BadRequest(400, "malformed JSON: nested too deeply") from None
    expected = 'expected {"image": [[28 numbers in [0, 1]] × 28 rows]}'
    if not isinstance(document, dict) or set(document) != {"image"}:
        raise BadRequest(400, f"{expected}, got {describe(document)}")
    try:
        image = np.asarray(document["image"])
    except ValueError:  # rows of different lengths
        raise BadRequest(400, f"{expected}; the rows have different lengths") from None
    if image.dtype.kind not in "iuf" or image.shape != (28, 28):
        raise BadRequest(400, f"{expected}, got {describe_array(image)}")
    if image.min() < 0 or image.max() > 1:
        raise BadRequest(400, f"{expected}; values run from {image.min():g} to {image.max():g}")
    return image.astype(np.float32)


def describe(document: Any) -> str:
    if isinstance(document, dict):
        return f"an object with keys {sorted(document)}"
    return f"a JSON {type(document).__name__}"


def describe_array(image: np.ndarray) -> str:
    kinds = {"b": "booleans", "U": "strings", "O": "mixed values"}
    what = kinds.get(image.dtype.kind, "numbers")
    return f"{what} of shape {list(image.shape)}"


async def bad_request(request: Request, error: Exception) -> Response:
    assert isinstance(error, BadRequest)
    return JSONResponse({"error": error.message}, status_code=error.status)


async def http_error(request: Request, error: Exception) -> Response:
    """Starlette's own 404 (no such path) and 405 (wrong method), as JSON."""
    assert isinstance(error, HTTPException)
    messages = {404: f"no such page: {request.url.path}", 405: "method not allowed"}
    message = messages.get(error.status_code, str(error.detail))
    return JSONResponse({"error": message}, status_code=error.status_code, headers=error.headers)


async def server_error(request: Request, error: Exception) -> Response:
    """A bug: Starlette re-raises it after this answer, so uvicorn logs its traceback."""
    return JSONResponse({"error": "internal error (logged on the server)"}, status_code=500)
