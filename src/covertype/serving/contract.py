"""The service's HTTP contract where BentoML leaves gaps: media type, body size, and the OpenAPI document.

BentoML 1.4 answers a ``multipart/form-data`` body without boundary with a 500, reads any body
whatever its size, and writes an OpenAPI document (``/docs.json``) that disagrees with its answers
(400 bodies, nullable fields, one-or-many records, no 413/415/503). ``EnforceContract`` sits in front
of the APIs: it refuses a media type other than JSON (415) and a body over the limit (413) before
BentoML reads it, and serves the document ``openapi_document`` writes from the same pydantic models
the service validates and answers with. ``OneLineRefusals`` makes each refused request one WARNING
line naming the fields and reasons, where BentoML logs an ERROR with a traceback.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bentoml.exceptions import BentoMLException
from pydantic import TypeAdapter, ValidationError

from covertype.serving.metrics import Message, Receive, Scope, Send

JSON = "application/json"
#: The logger BentoML 1.4 reports a request's exception on ("Exception on /predict [POST]" and its
#: traceback), whether the request was refused (4xx) or failed (5xx).
BENTOML_REQUEST_LOGGER = "bentoml._internal.server.http_app"
#: The problems a refusal's log line names; the answer's ``detail`` has them all.
LOGGED_PROBLEMS = 5
REF_TEMPLATE = "#/components/schemas/{model}"
DOCUMENT_PATH = "/docs.json"


@dataclass(frozen=True)
class Operation:
    """One API as its document shows it: the body it takes and each status it answers with."""

    description: str
    #: The model of the body, or None when an empty body is the whole request.
    request: Any
    #: status -> (description, the type of the body answered with that status)
    answers: Mapping[int, tuple[str, Any]] = field(default_factory=dict)
    #: The HTTP method: BentoML's APIs are POST; the routes mounted next to them may be GET.
    method: str = "post"


class Components:
    """The schemas the document refers to, collected as operations name them."""

    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {}

    def schema(self, annotation: Any, inline: bool = False) -> dict[str, Any]:
        """The JSON schema of ``annotation``, its nested models moved to the components.

        A model itself is referred to by its title unless ``inline`` (BentoML names every API's
        request model ``Input``).
        """
        schema = TypeAdapter(annotation).json_schema(ref_template=REF_TEMPLATE)
        self.schemas.update(schema.pop("$defs", {}))
        if inline or schema.get("type") != "object" or "title" not in schema:
            schema.pop("title", None)
            return schema
        self.schemas[schema["title"]] = schema
        return {"$ref": REF_TEMPLATE.format(model=schema["title"])}


def openapi_document(framework: dict[str, Any], operations: Mapping[str, Operation]) -> dict[str, Any]:
    """BentoML's document with each API's request and answers rewritten from ``operations`` (OpenAPI 3.1),
    and the operations of the routes mounted next to its APIs added.

    OpenAPI 3.1 takes pydantic's JSON schemas as they are, ``null`` included; the framework's own
    paths (health, metrics) are kept.
    """
    components = Components()
    paths = dict(framework["paths"])
    for path, operation in operations.items():
        method = operation.method
        # A mounted route is not in BentoML's document: it gets an operation of its own.
        post = dict(paths.get(path, {}).get(method, {"operationId": f"{method}__{path.strip('/')}"}))
        post["description"] = operation.description
        post["responses"] = {
            str(status): {
                "description": description,
                "content": {JSON: {"schema": components.schema(answer)}},
            }
            for status, (description, answer) in operation.answers.items()
        }
        if operation.request is None:
            post.pop("requestBody", None)
        else:
            schema = components.schema(operation.request, inline=True)
            post["requestBody"] = {"required": True, "content": {JSON: {"schema": schema}}}
        paths[path] = {method: post}
    return {
        **framework,
        "openapi": "3.1.0",
        "paths": paths,
        "components": {"schemas": components.schemas},
    }


def error_message(status: int, message: str) -> tuple[int, bytes]:
    return status, json.dumps({"error": message}).encode()


class EnforceContract:
    """ASGI middleware: JSON only (415) and at most ``max_body_bytes`` (413) on ``api_paths``; the document.

    The body is read here, up to the limit, and handed on whole, so BentoML never parses an oversized
    body; a ``Content-Length`` over the limit is refused before a byte of it is read.
    """

    def __init__(
        self,
        app: Callable[[Scope, Receive, Send], Any],
        api_paths: frozenset[str],
        max_body_bytes: int,
        limit_name: str,
        document: Callable[[], dict[str, Any]],
    ) -> None:
        self.app = app
        self.api_paths = api_paths
        self.max_body_bytes = max_body_bytes
        self.limit_name = limit_name
        self.document = document
        self._document_body: bytes | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
        elif scope["path"] == DOCUMENT_PATH and scope["method"] == "GET":
            if self._document_body is None:
                self._document_body = json.dumps(self.document()).encode()
            await answer(send, 200, self._document_body)
        elif scope["path"] not in self.api_paths or scope["method"] != "POST":
            await self.app(scope, receive, send)
        elif refusal := self._refusal_by_headers(scope):
            await answer(send, *refusal)
        else:
            body = await self._body_within_limit(receive)
            if body is None:
                await answer(send, *self._too_large())
            else:
                await self.app(scope, replay(body, receive), send)

    def _refusal_by_headers(self, scope: Scope) -> tuple[int, bytes] | None:
        """415 for a body that is not JSON (no type counts as JSON, as BentoML reads it); 413 by its size."""
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        media_type = headers.get("content-type", JSON).split(";")[0].strip().lower()
        if media_type != JSON:
            shown = media_type or "an empty type"
            return error_message(415, f"this API takes a JSON body (Content-Type: {JSON}), not {shown}")
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            return self._too_large()
        return None

    def _too_large(self) -> tuple[int, bytes]:
        return error_message(
            413, f"the request body is over the limit of {self.max_body_bytes} bytes ({self.limit_name})"
        )

    async def _body_within_limit(self, receive: Receive) -> bytes | None:
        """The whole body, or None as soon as it passes the limit (or the client left)."""
        body = bytearray()
        more_body = True
        while more_body:
            message = await receive()
            body += message.get("body", b"")
            if message["type"] == "http.disconnect" or len(body) > self.max_body_bytes:
                return None
            more_body = message.get("more_body", False)
        return bytes(body)


def replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives ``body`` in one message, then waits on the connection as before."""
    delivered = False

    async def receive_body() -> Message:
        nonlocal delivered
        if delivered:
            return await receive()
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive_body


async def answer(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", JSON.encode()), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class OneLineRefusals(logging.Filter):
    """A refused request is one WARNING line naming the path, the status and each field's problem.

    BentoML logs every request exception as ``Exception on <path> [POST]`` at ERROR with its
    traceback: a fuzzer's 549 refusals made 549 tracebacks. A refusal (an invalid body, or a
    BentoML exception under 500) is not the service's error, so its record is rewritten here; a
    server error keeps its traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, ValidationError):
            status, reason = 400, refusal_reasons(error)
        elif isinstance(error, BentoMLException) and error.error_code.value < 500:
            status, reason = error.error_code.value, str(error)
        else:
            return True
        path, method = (record.args or ("?", "?"))[:2]  # type: ignore[index]
        record.msg, record.args = "refused %s %s (%d): %s", (method, path, status, reason)
        record.levelno, record.levelname = logging.WARNING, logging.getLevelName(logging.WARNING)
        record.exc_info, record.exc_text = None, None
        return True


def refusal_reasons(error: ValidationError) -> str:
    """``records.1.Slope: Input should be ...; ...``: where and why, for the first few problems."""
    problems = error.errors(include_input=False, include_url=False)
    shown = "; ".join(
        f"{'.'.join(str(part) for part in problem['loc']) or 'body'}: {problem['msg']}"
        for problem in problems[:LOGGED_PROBLEMS]
    )
    more = len(problems) - LOGGED_PROBLEMS
    return shown + (f"; and {more} more" if more > 0 else "")


def log_refusals_in_one_line() -> None:
    """Install ``OneLineRefusals`` on BentoML's request logger (once: the service module's import)."""
    logger = logging.getLogger(BENTOML_REQUEST_LOGGER)
    if not any(isinstance(existing, OneLineRefusals) for existing in logger.filters):
        logger.addFilter(OneLineRefusals())
