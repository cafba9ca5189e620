"""What every REST request body goes through, whichever route serves it (the headers every answer carries
are added by ``rest_observe``).

Litestar reads a JSON body whatever its ``Content-Type`` says and lets the decoder's own failures
(invalid UTF-8, nesting deeper than the interpreter's recursion limit) escape as 500s. The request
class here is the one place bodies are read, before any dependency or handler runs, so a route added
later gets the same checks without remembering them. The errors it raises are Litestar's own; they
become problem details in ``problems.py`` like every other error.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import Any

import msgspec
from litestar import Request
from litestar.exceptions import HTTPException, SerializationException, ValidationException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.status_codes import HTTP_415_UNSUPPORTED_MEDIA_TYPE

MAX_NAMED_UNKNOWN = 20  # a body of thousands of junk keys gets a short answer, not an echo of itself
MAX_NAME_SHOWN = 64
# A body refused as too large is still read, up to this much and this long, and dropped (RFC 9112 §9.6): a server
# that closes with unread bytes makes the kernel reset the connection, and the client may lose the 413 with it.
MAX_DISCARDED = 4 * 1024 * 1024  # as gRPC reads a message up to its 4 MiB limit
DISCARD_SECONDS = 5.0


def is_json_media_type(content_type: str) -> bool:
    """``application/json`` or any ``application/<something>+json``, parameters and case aside."""
    media_type = content_type.partition(";")[0].strip().lower()
    return media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json"))


FIELD_AT = re.compile(r"- at `\$\.([A-Za-z_][A-Za-z0-9_]*)")
WRONG_TYPE = re.compile(r"Expected `[^`]+`, got `[^`]+`")  # msgspec's message for a JSON type mismatch


class JsonBodyRequest(Request[Any, Any, Any]):
    """Refuses bodies that are not JSON (415) or not decodable (400), and names unknown top-level fields (400)."""

    async def json(self) -> Any:
        if not is_json_media_type(self.headers.get("content-type", "")):
            # A browser posts text/plain and forms cross-site without a preflight: never read them as JSON.
            raise HTTPException(
                status_code=HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                detail="The request body must be JSON, sent with Content-Type: application/json.",
            )
        try:
            value = await super().json()
        except UnicodeDecodeError:
            raise _body_error("is not valid UTF-8") from None
        except RecursionError:
            raise _body_error("is nested too deeply") from None
        except SerializationException as exc:
            raise _body_error(f"is not valid JSON ({exc})") from None
        if isinstance(value, dict) and (unknown := self._unknown_fields(value)):
            raise ValidationException(
                detail="The request body has fields this route does not accept.",
                extra=[{"key": name[:MAX_NAME_SHOWN], "message": "is not a field of this request"} for name in unknown],
            )
        if isinstance(value, dict) and (struct := _body_struct(self)) is not None:
            _check_types(value, struct)
        return value

    async def body(self) -> bytes:
        """The body, or a 413 once it passes 64 KiB, sent after the rest of it is read, so the client sees it."""
        try:
            return await super().body()
        except RequestEntityTooLarge:
            await self._discard_the_rest()
            raise

    async def _discard_the_rest(self) -> None:
        """Read and drop what is left of a refused body, within ``MAX_DISCARDED`` bytes and ``DISCARD_SECONDS``."""
        read = 0
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(DISCARD_SECONDS):
                while read <= MAX_DISCARDED:
                    event = await self.receive()
                    if event["type"] != "http.request":
                        return
                    read += len(event.get("body", b""))
                    if not event.get("more_body", False):
                        return

    def _unknown_fields(self, body: dict[str, Any]) -> list[str]:
        struct = _body_struct(self)
        if struct is None or not struct.__struct_config__.forbid_unknown_fields:
            return []
        known = frozenset(struct.__struct_encode_fields__)
        return [name for name in body if name not in known][:MAX_NAMED_UNKNOWN]


def _body_struct(request: Request[Any, Any, Any]) -> type[msgspec.Struct] | None:
    """The Struct the route reads its body into (``T`` or ``T | None``), if any."""
    data = request.route_handler.parsed_fn_signature.parameters.get("data")
    if data is None:
        return None
    for candidate in (data, *data.inner_types) if data.is_union else (data,):
        if candidate.is_subclass_of(msgspec.Struct):
            struct: type[msgspec.Struct] = candidate.type_
            return struct
    return None


def _check_types(body: dict[str, Any], struct: type[msgspec.Struct]) -> None:
    """Each field's JSON type is the documented one (Litestar converts bodies leniently: 0 became false).

    A 400 naming the field, as for any other bad field. Only a type mismatch is answered here: a missing
    field or a bound is Litestar's to report, as before, after the route's dependencies (a 401 first).
    """
    try:
        msgspec.convert(body, struct, strict=True)
    except msgspec.ValidationError as exc:
        message = str(exc)
        located = FIELD_AT.search(message)
        if not WRONG_TYPE.match(message):
            return
        raise ValidationException(
            detail="The request body has a field of the wrong type.",
            extra=[{"key": located.group(1) if located else "body", "message": message}],
        ) from None


def _body_error(message: str) -> ValidationException:
    return ValidationException(
        detail="The request body is not valid JSON.", extra=[{"key": "body", "message": message}]
    )
