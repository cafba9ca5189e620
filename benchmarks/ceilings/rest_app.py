"""The REST ceiling: one trivial Litestar handler on Granian, configured as the service runs it.

It answers the point query's route with the benchmark user's record from memory: no authentication,
no database. Whatever the service serves below this is the price of its own work.

    BENCH_RECORD=record.json python -m benchmarks.ceilings.rest_app --port 8001
"""

from __future__ import annotations

import argparse
from datetime import datetime

import msgspec
from litestar import Litestar, get

from benchmarks.ceilings.record import load, times


class UserOut(msgspec.Struct, frozen=True):
    """The service's REST user shape (same fields, same types)."""

    id: str
    username: str
    email: str
    first_name: str
    last_name: str
    phone: str
    avatar_url: str
    role: str
    status: str
    is_verified: bool
    created_at: datetime
    updated_at: datetime
    last_login_at: datetime | None


def create_app() -> Litestar:
    record = UserOut(**times(load()))

    @get("/api/v1/users/{user_id:str}", sync_to_thread=False)
    def read(user_id: str) -> UserOut:
        return record

    return Litestar(route_handlers=[read], debug=False, logging_config=None, openapi_config=None)


def main() -> None:
    from granian import Granian
    from granian.constants import Interfaces, Loops

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    Granian(
        target="benchmarks.ceilings.rest_app:create_app",
        factory=True,
        address="127.0.0.1",
        port=args.port,
        interface=Interfaces.ASGI,
        workers=1,
        loop=Loops.asyncio,  # as the service (grpc.aio shares its loop)
        log_level="warning",  # type: ignore[arg-type]
    ).serve()


if __name__ == "__main__":
    main()
