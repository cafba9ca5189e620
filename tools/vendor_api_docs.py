"""Vendor the API docs pages' scripts and stylesheets from the npm registry, at pinned versions (SDD-152).

The docs pages (/schema: Scalar, /schema/swagger: Swagger UI) must work offline, so the service serves
these files itself. Each package is fetched with ``npm pack`` (which checks the registry's integrity),
its tarball is checked again against the integrity pinned below, and the files the pages load are
stored gzip-compressed (deterministic: no name, mtime 0) next to a manifest of their SHA-256.

    python tools/vendor_api_docs.py          # fetch the pinned versions and rewrite py_app/entrypoints/api_docs/
    python tools/vendor_api_docs.py --check  # offline: the vendored files are exactly what the manifest says

To move to a new version: change ``version`` and ``integrity`` (``npm view <name>@<version> dist.integrity``),
run the tool, look at the pages, commit the new folder (the old one is removed).
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "py_app" / "entrypoints" / "api_docs"
MANIFEST = TARGET / "manifest.json"
MEDIA_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    integrity: str  # the registry's dist.integrity of the tarball
    license: str
    served: dict[str, str]  # path in the tarball -> file name served
    notices: dict[str, str] = field(default_factory=dict)  # license texts kept beside the files, not served

    @property
    def folder(self) -> str:
        return f"{self.name.lstrip('@').replace('/', '-')}-{self.version}"


PACKAGES = (
    Package(
        name="@scalar/api-reference",
        version="1.76.0",
        integrity="sha512-pjqwnzmA9YK3ZX+IZSICMsywm4qI6HLSngR2py9H6TvFApHHuJjkTAd+gFJfnqJDzJuro8k7ji6JCtJ2U+Byng==",
        license="MIT",
        served={"package/dist/browser/standalone.js": "standalone.js", "package/dist/style.css": "style.css"},
    ),
    Package(
        name="swagger-ui-dist",
        version="5.35.0",
        integrity="sha512-U06rpMtW9V3XPGOBeamTUSr0Z09jMX4IJuANpE/EZbAhw0G8CgwrzU4YmXkn/h0wCDNsXdGarTNNHC3sU8yVUQ==",
        license="Apache-2.0",
        served={
            "package/swagger-ui-bundle.js": "swagger-ui-bundle.js",
            "package/swagger-ui-standalone-preset.js": "swagger-ui-standalone-preset.js",
            "package/swagger-ui.css": "swagger-ui.css",
        },
        notices={
            "package/LICENSE": "LICENSE",
            "package/NOTICE": "NOTICE",
            "package/swagger-ui-bundle.js.LICENSE.txt": "swagger-ui-bundle.js.LICENSE.txt",
            "package/swagger-ui-standalone-preset.js.LICENSE.txt": "swagger-ui-standalone-preset.js.LICENSE.txt",
        },
    ),
)


def sri(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def fetch(package: Package, workdir: Path) -> Path:
    done = subprocess.run(
        ["npm", "pack", f"{package.name}@{package.version}", "--json", "--pack-destination", str(workdir)],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=True,
    )
    tarball = workdir / json.loads(done.stdout)[0]["filename"]
    got = sri(tarball.read_bytes())
    if got != package.integrity:
        raise SystemExit(
            f"{package.name}@{package.version}: tarball integrity {got} is not the pinned {package.integrity}"
        )
    return tarball


def vendor() -> None:
    files: dict[str, dict[str, object]] = {}
    packages = []
    with tempfile.TemporaryDirectory() as tmp:
        staging = Path(tmp) / "api_docs"
        staging.mkdir()
        for package in PACKAGES:
            with tarfile.open(fetch(package, Path(tmp))) as archive:
                folder = staging / package.folder
                folder.mkdir()
                for member, name in package.served.items():
                    data = _read(archive, member)
                    (folder / f"{name}.gz").write_bytes(gzip.compress(data, compresslevel=9, mtime=0))
                    files[f"{package.folder}/{name}"] = {
                        "package": package.name,
                        "source": member.removeprefix("package/"),
                        "sha256": hashlib.sha256(data).hexdigest(),
                        "bytes": len(data),
                        "media_type": MEDIA_TYPES[Path(name).suffix],
                    }
                for member, name in package.notices.items():
                    (folder / name).write_bytes(_read(archive, member))
            packages.append(
                {
                    "name": package.name,
                    "version": package.version,
                    "integrity": package.integrity,
                    "license": package.license,
                    "folder": package.folder,
                }
            )
        manifest = {"generated_by": "tools/vendor_api_docs.py", "packages": packages, "files": files}
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        shutil.rmtree(TARGET, ignore_errors=True)
        shutil.copytree(staging, TARGET)
    print(f"vendored {len(files)} files from {len(packages)} packages into {TARGET.relative_to(ROOT)}")


def _read(archive: tarfile.TarFile, member: str) -> bytes:
    extracted = archive.extractfile(member)
    if extracted is None:
        raise SystemExit(f"{member} is not a file in the tarball")
    return extracted.read()


def check() -> int:
    manifest = json.loads(MANIFEST.read_text())
    pinned = {(package.name, package.version, package.integrity) for package in PACKAGES}
    recorded = {(package["name"], package["version"], package["integrity"]) for package in manifest["packages"]}
    problems = (
        [] if pinned == recorded else [f"manifest packages {sorted(recorded)} are not the pinned {sorted(pinned)}"]
    )
    for name, entry in manifest["files"].items():
        data = gzip.decompress((TARGET / f"{name}.gz").read_bytes())
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            problems.append(f"{name}: content does not match the manifest")
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="verify the vendored files offline")
    if parser.parse_args().check:
        return check()
    vendor()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
