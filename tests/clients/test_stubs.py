"""Client stubs: buf.gen.yaml regenerates exactly what is committed, and covers Java and C# too.

Generation runs into a temporary directory (buf's `-o`), so the tree is never touched; the committed Go and
TypeScript output is compared file by file.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.clients.toolchain import (
    GO_EXAMPLE,
    NODE_EXAMPLE,
    ROOT,
    go_env,
    googleapis_include,
    protoc,
    require,
    run,
)

COMMITTED_STUB_DIRS = ("examples/go/gen", "examples/node/src/gen", "examples/node/src/gen-rpc")
BUF = ROOT / ".venv" / "bin" / "buf"


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The output of both templates, generated as `make client-stubs` does, under a temporary root."""
    for plugin in ("protoc-gen-go", "protoc-gen-go-grpc", "grpc_java_plugin", "protoc"):
        require(plugin, "make go-deps protoc-deps")
    if not (NODE_EXAMPLE / "node_modules" / ".bin" / "protoc-gen-ts_proto").exists():
        pytest.fail("ts-proto is not installed: run `make node-deps`")
    work = tmp_path_factory.mktemp("stubs")
    contract, rpc = work / "contract.binpb", work / "google-rpc.binpb"
    googleapis = googleapis_include()
    protos = sorted(str(p.relative_to(ROOT / "protos")) for p in (ROOT / "protos").rglob("*.proto"))
    protoc("-I", ROOT / "protos", "-I", googleapis, "--include_imports", "--include_source_info",
           f"--descriptor_set_out={contract}", *protos)  # fmt: skip
    protoc("-I", googleapis, "--include_imports", "--include_source_info", f"--descriptor_set_out={rpc}",
           "google/rpc/status.proto", "google/rpc/error_details.proto")  # fmt: skip
    out = work / "out"
    run([BUF, "generate", contract, "--template", "buf.gen.yaml", "--path", "xpander", "-o", out])
    run([BUF, "generate", rpc, "--template", "examples/node/buf.gen.yaml", "--path", "google/rpc", "-o", out])
    return out


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("stub_dir", COMMITTED_STUB_DIRS)
def test_regenerating_changes_nothing_committed(regenerated: Path, stub_dir: str) -> None:
    committed, fresh = _files(ROOT / stub_dir), _files(regenerated / stub_dir)
    assert sorted(fresh) == sorted(committed), "files differ: run `make client-stubs` and commit"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"stale stubs {stale}: run `make client-stubs` and commit"


def test_java_stubs_have_messages_and_grpc_client(regenerated: Path) -> None:
    package = regenerated / "build/clients/java/ai/xpander/bridge/v1"
    assert (package / "CreateTaskRequest.java").is_file()
    assert "class TaskServiceBlockingStub" in (package / "TaskServiceGrpc.java").read_text()


def test_csharp_stubs_have_messages(regenerated: Path) -> None:
    source = (regenerated / "build/clients/csharp/TaskService.cs").read_text()
    assert "namespace Xpander.Bridge.V1" in source
    assert "class CreateTaskRequest" in source


def test_go_example_is_gofmt_clean_and_vets(tmp_path: Path) -> None:
    sources = sorted(GO_EXAMPLE.glob("*.go"))
    unformatted = run([require("gofmt", "make go-deps"), "-l", *sources]).stdout.split()
    assert not unformatted, f"run gofmt -w on {unformatted}"
    env = go_env(tmp_path / "gopath", os.environ)
    run([require("go", "make go-deps"), "vet", "."], cwd=GO_EXAMPLE, env=env)
