"""Two live servers for the whole attack suite, each started once: HS256 (the default) and EdDSA."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.security.live import Live, serve


@pytest.fixture(scope="package")
def hs256(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """The default deployment: HS256 access tokens under the development secret in ``var/jwt_secret``."""
    yield from serve(tmp_path_factory.mktemp("attacks-hs256"))


@pytest.fixture(scope="package")
def eddsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """Ed25519 access tokens from a development key ring, public keys at /.well-known/jwks.json."""
    yield from serve(tmp_path_factory.mktemp("attacks-eddsa"), ARCANA_JWT_ALGORITHM="EdDSA")
