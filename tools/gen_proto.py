"""Generate py_app/_proto from protos/ with grpcio-tools and make the imports package-relative.

Usage: python tools/gen_proto.py [--check]
--check regenerates into a temporary folder and fails when the committed output differs.
"""

from __future__ import annotations

import argparse
import filecmp
import re
import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
TARGET = ROOT / "py_app" / "_proto"
HEADER = "# Generated from protos/ by tools/gen_proto.py. Do not edit.\n"


def generate(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    sources = sorted(str(path.relative_to(PROTOS)) for path in PROTOS.rglob("*.proto"))
    include = str(resources.files("grpc_tools") / "_proto")
    outputs = [f"--python_out={out}", f"--pyi_out={out}", f"--grpc_python_out={out}"]
    args = ["protoc", f"-I{PROTOS}", f"-I{include}", *outputs]
    if protoc.main([*args, *sources]) != 0:
        raise SystemExit("protoc failed")
    for folder in [out, *(path for path in out.rglob("*") if path.is_dir())]:
        init = folder / "__init__.py"
        if not init.exists():
            init.write_text(HEADER)
    for path in out.rglob("*.py*"):
        if path.name == "__init__.py":
            continue
        text = path.read_text()
        # "from arcana.v1 import x_pb2" -> "from . import x_pb2": the package is py_app._proto.arcana.v1
        text = re.sub(r"^from arcana(?:\.internal)?\.v1 import ", "from . import ", text, flags=re.MULTILINE)
        text = re.sub(
            r"^import arcana(?:\.internal)?\.v1\.(\w+) as ", r"from . import \1 as ", text, flags=re.MULTILINE
        )
        path.write_text(text if text.startswith(HEADER) else HEADER + text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail when the committed code is stale")
    args = parser.parse_args()
    if not args.check:
        shutil.rmtree(TARGET, ignore_errors=True)
        generate(TARGET)
        print(f"generated {TARGET.relative_to(ROOT)}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "_proto"
        generate(fresh)
        stale = _differences(filecmp.dircmp(fresh, TARGET, ignore=["__pycache__"]))
    if stale:
        print("py_app/_proto is stale; run `make proto` and commit:", *stale, sep="\n  ", file=sys.stderr)
        return 1
    print("py_app/_proto matches protos/")
    return 0


def _differences(cmp: filecmp.dircmp[str]) -> list[str]:
    found = [*cmp.left_only, *cmp.right_only, *cmp.diff_files]
    for sub in cmp.subdirs.values():
        found += _differences(sub)
    return found


if __name__ == "__main__":
    raise SystemExit(main())
