"""Where the client toolchains live, and running them as a client team would."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NODE_EXAMPLE = ROOT / "examples" / "node"
GO_EXAMPLE = ROOT / "examples" / "go"
GO_IMPORT_ROOT = "github.com/xpander-ai/xpander-bridge/gen/go"
"""Import path prefix of the protos' go_package; examples/go/gen is the directory behind it."""
DEBIAN_GOPATH = "/usr/share/gocode"
"""Where Debian's golang-*-dev packages put their library sources."""


def require(program: str, install_hint: str) -> str:
    """The path of `program`, or a test failure that says how to install it."""
    found = shutil.which(program)
    if found is None:
        pytest.fail(f"{program} is not installed: run `{install_hint}`")
    return found


def run(
    argv: Sequence[str | Path],
    *,
    cwd: Path = ROOT,
    env: Mapping[str, str] | None = None,
    timeout: float = 120.0,
) -> subprocess.CompletedProcess[str]:
    """Run a command to completion; a non-zero exit fails the test with the command's output."""
    result = subprocess.run(
        [str(arg) for arg in argv],
        cwd=cwd,
        env=None if env is None else dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, argv))} exited {result.returncode}\n"
            f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        )
    return result


def go_env(gopath: Path, base: Mapping[str, str]) -> dict[str, str]:
    """Environment for a GOPATH-mode build against Debian's Go library sources (no module proxy here).

    `gopath/src/<GO_IMPORT_ROOT>` is made a symlink to examples/go/gen, which gives the committed stubs
    the import path their go_package names.
    """
    link = gopath / "src" / GO_IMPORT_ROOT
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(GO_EXAMPLE / "gen", target_is_directory=True)
    return {**base, "GO111MODULE": "off", "GOFLAGS": "", "GOPATH": f"{gopath}:{DEBIAN_GOPATH}"}


def protoc(*args: str | Path) -> None:
    """The protoc of grpcio-tools, the same one `make generate` and `make descriptor` use."""
    run([sys.executable, "-m", "grpc_tools.protoc", *args])


def googleapis_include() -> Path:
    """The directory holding google/api and google/rpc .proto files (the googleapis-common-protos wheel)."""
    import google.api

    return Path(next(iter(google.api.__path__))).parent.parent
