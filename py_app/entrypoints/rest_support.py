"""REST plumbing shared by the controllers (as rpc_support is for the servicers)."""

from __future__ import annotations

from typing import Annotated, TypeAlias, TypeVar

from litestar.di import Dependency
from litestar.params import SkipValidationMarker

T = TypeVar("T")

# A dependency injected by name and trusted as built: services are typed by their Protocols, which
# Litestar cannot (and per request should not) check with isinstance.
Injected: TypeAlias = Annotated[T, Dependency(kind="named"), SkipValidationMarker()]
