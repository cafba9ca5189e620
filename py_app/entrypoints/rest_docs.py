"""The OpenAPI document and the docs pages that browse it, served without any CDN (SRS-153, SRS-156).

The pages' scripts and stylesheets are pinned copies vendored by ``tools/vendor_api_docs.py`` into
``api_docs/`` (gzip-compressed, with a manifest of their SHA-256) and served under a versioned path,
so browsers may cache them for good. The schema plugin makes the document say what clients must send
and shows each body's example.
"""

from __future__ import annotations

import functools
import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
from litestar import Request, Response, get

# Litestar's msgspec schema plugin is not exported; we extend it rather than copy it (litestar is pinned,
# and test_api_openapi.py fails if the document stops saying what is required).
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin as LitestarStructSchemaPlugin
from litestar.exceptions import NotFoundException
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, OpenAPIRenderPlugin, ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, Reference, Schema, SecurityScheme
from litestar.openapi.spec.enums import OpenAPIFormat, OpenAPIType
from litestar.params import FromPath
from litestar.typing import FieldDefinition

from py_app import __version__
from py_app.config import Settings

ASSETS_DIR = Path(__file__).with_name("api_docs")
ASSETS_PATH = "/schema/assets"
IMMUTABLE = "public, max-age=31536000, immutable"  # the path names the version: a new version is a new URL
NO_FAVICON = "<link rel='icon' href='data:,'>"  # no request at all (Litestar's default icon is on a CDN)
# Scalar phones home unless told not to: web fonts from its CDN, telemetry, an "agent" on localhost.
SCALAR_OPTIONS = {
    "withDefaultFonts": False,
    "telemetry": False,
    "agent": {"disabled": True},
    "showDeveloperTools": "never",
    "showOperationId": True,
}


@dataclass(frozen=True)
class Asset:
    media_type: str
    gzipped: bytes

    @functools.cached_property
    def plain(self) -> bytes:
        return gzip.decompress(self.gzipped)


@functools.cache
def assets() -> dict[str, Asset]:
    """The vendored files by served name (``<package>-<version>/<file>``), read once per process."""
    manifest = json.loads((ASSETS_DIR / "manifest.json").read_text())
    return {
        name: Asset(entry["media_type"], (ASSETS_DIR / f"{name}.gz").read_bytes())
        for name, entry in manifest["files"].items()
    }


def asset_url(package_folder_prefix: str, file: str) -> str:
    """The URL of a vendored file, e.g. ``asset_url("swagger-ui-dist-", "swagger-ui.css")``."""
    for name in assets():
        folder, _, served = name.partition("/")
        if folder.startswith(package_folder_prefix) and served == file:
            return f"{ASSETS_PATH}/{name}"
    raise LookupError(f"no vendored {package_folder_prefix}*/{file}; run tools/vendor_api_docs.py")


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether ``Accept-Encoding`` takes gzip (RFC 9110 §12.5.3: ``gzip;q=0`` refuses it)."""
    for item in accept_encoding.split(","):
        coding, *params = (part.strip() for part in item.split(";"))
        if coding.lower() in ("gzip", "x-gzip", "*"):
            weight = next((param[2:] for param in params if param.lower().startswith("q=")), "1")
            try:
                return float(weight) > 0
            except ValueError:
                return False
    return False


@get(f"{ASSETS_PATH}/{{name:path}}", include_in_schema=False, sync_to_thread=False)
def docs_asset(name: FromPath[Path], request: Request[Any, Any, Any]) -> Response[bytes]:
    """One vendored script or stylesheet: gzip to clients that take it, plain to the others."""
    asset = assets().get(str(name).lstrip("/"))
    if asset is None:
        raise NotFoundException("No such file.")
    headers = {"Cache-Control": IMMUTABLE, "Vary": "Accept-Encoding"}
    if accepts_gzip(request.headers.get("accept-encoding", "")):
        return Response(asset.gzipped, media_type=asset.media_type, headers={**headers, "Content-Encoding": "gzip"})
    return Response(asset.plain, media_type=asset.media_type, headers=headers)


def render_plugins(settings: Settings) -> list[OpenAPIRenderPlugin]:
    """Scalar at /schema and Swagger UI at /schema/swagger from our own copies; only the JSON when docs are off."""
    if not settings.api_docs_enabled:
        return [JsonRenderPlugin()]
    return [
        ScalarRenderPlugin(
            js_url=asset_url("scalar-api-reference-", "standalone.js"),
            css_url=asset_url("scalar-api-reference-", "style.css"),
            favicon=NO_FAVICON,
            options=SCALAR_OPTIONS,
        ),
        SwaggerRenderPlugin(
            path="/swagger",
            js_url=asset_url("swagger-ui-dist-", "swagger-ui-bundle.js"),
            css_url=asset_url("swagger-ui-dist-", "swagger-ui.css"),
            standalone_preset_js_url=asset_url("swagger-ui-dist-", "swagger-ui-standalone-preset.js"),
            favicon=NO_FAVICON,
        ),
    ]


def docs_route_handlers(settings: Settings) -> list[HTTPRouteHandler]:
    return [docs_asset] if settings.api_docs_enabled else []


def openapi_config(settings: Settings) -> OpenAPIConfig:
    return OpenAPIConfig(
        title="Arcana",
        version=__version__,
        description=(
            "User management and authentication. Bodies are JSON (`Content-Type: application/json`); "
            "errors are RFC 9457 problem details with a stable `code`."
        ),
        path="/schema",
        components=Components(
            security_schemes={
                "BearerAuth": SecurityScheme(
                    type="http", scheme="bearer", bearer_format="JWT", description="Access token from login"
                )
            }
        ),
        render_plugins=render_plugins(settings),
    )


class StructSchemaPlugin(LitestarStructSchemaPlugin):
    """Litestar's msgspec plugin, plus what our Structs declare for the document.

    A field annotated ``REQUIRED`` is listed as required although the Struct defaults it (so the
    service can name every missing field in one answer); a Struct that forbids unknown fields says
    ``additionalProperties: false``; a Struct's ``example`` ClassVar becomes its schema's example.
    """

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: Any) -> Schema:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        struct = field_definition.type_
        info = msgspec.inspect.type_info(struct)
        assert isinstance(info, msgspec.inspect.StructType)
        marked = {field.encode_name for field in info.fields if _extra(field).get("required") is True}
        for field in info.fields:
            if (stated := _extra(field).get("schema")) and schema.properties:
                _state(schema.properties.get(field.encode_name), stated)
        schema.required = sorted(set(schema.required or ()) | marked) or None
        if struct.__struct_config__.forbid_unknown_fields:
            schema.additional_properties = False  # the service refuses unknown fields (rest_guards.py)
        example = getattr(struct, "example", None)
        if example is not None:
            schema.examples = [example]
        return schema


def _extra(field: msgspec.inspect.Field) -> dict[str, Any]:
    """The ``Meta(extra=...)`` of a field (or of the non-null member of ``T | None``)."""
    kinds = field.type.types if isinstance(field.type, msgspec.inspect.UnionType) else (field.type,)
    for kind in kinds:
        if isinstance(kind, msgspec.inspect.Metadata) and kind.extra:
            return kind.extra
    return {}


def _state(prop: Schema | Reference | None, stated: dict[str, Any]) -> None:
    """Write what a field's ``extra["schema"]`` states into its property (the string member of a union)."""
    targets = [prop] if prop is None or not isinstance(prop, Schema) or not prop.one_of else list(prop.one_of)
    for target in targets:
        if isinstance(target, Schema) and target.type == OpenAPIType.STRING:
            for name, value in stated.items():
                setattr(target, name, OpenAPIFormat(value) if name == "format" else value)
