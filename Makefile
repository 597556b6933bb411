# Every target installs what it needs: `make run` and `make test` work on a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROTO_FILES := $(sort $(wildcard protos/xpander/bridge/v1/*.proto))

.PHONY: install generate check-generated buf-lint lint typecheck pytest test run local-platform clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

# googleapis-common-protos ships google/api/*.proto beside its Python modules; protoc and buf read them there.
GOOGLEAPIS = $$($(BIN)/python -c 'import google.api, pathlib; print(pathlib.Path(google.api.__path__[0]).parent.parent)')

generate: install
	rm -rf generated/xpander
	mkdir -p generated
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m grpc_tools.protoc -I protos -I $(GOOGLEAPIS) \
		--python_out=generated --grpc_python_out=generated \
		--mypy_out=generated --mypy_grpc_out=generated $(PROTO_FILES)
	for d in generated/xpander generated/xpander/bridge generated/xpander/bridge/v1; do touch $$d/__init__.py; done
	touch generated/xpander/py.typed

check-generated: generate
	@git diff --exit-code --stat -- generated || (echo "generated/ is stale: run 'make generate' and commit" && exit 1)
	@test -z "$$(git status --porcelain -- generated)" || (git status --porcelain -- generated && echo "untracked generated files" && exit 1)

buf-lint: install
	$(BIN)/python -m grpc_tools.protoc -I protos -I $(GOOGLEAPIS) --include_imports --include_source_info \
		--descriptor_set_out=$(VENV)/contract.binpb $(PROTO_FILES)
	cd protos && ../$(BIN)/buf lint ../$(VENV)/contract.binpb --path xpander
	cd protos && ../$(BIN)/buf format --diff --exit-code .

lint: install
	$(BIN)/ruff check bridge tests bench examples/python_client.py
	$(BIN)/ruff format --check bridge tests bench examples/python_client.py

typecheck: install
	$(BIN)/mypy

pytest: install client-deps sdk-venv bench-tools test-deps
	$(BIN)/pytest -q

# Real peers the tests start themselves: a forward proxy.
TEST_DEBS := tinyproxy

.PHONY: test-deps
test-deps:
	$(call apt_install,$(TEST_DEBS))

test: install sdk-venv buf-lint check-generated check-client-stubs lint typecheck pytest

run: install
	$(BIN)/xpander-bridge serve --local-platform --listen 127.0.0.1:50051

local-platform: install
	$(BIN)/xpander-bridge local-platform --listen 127.0.0.1:9016

clean:
	rm -rf $(VENV) $(SDK_VENV) .mypy_cache .ruff_cache .pytest_cache

# --- The official xpander-sdk (tests/sdk) in a venv of its own: its heavy dependencies clash with ours -------

.PHONY: sdk-venv

SDK_VENV := .venv-sdk
SDK_STAMP := $(SDK_VENV)/.installed

sdk-venv: $(SDK_STAMP)

# The '*' .gitignore inside keeps the whole venv out of git without touching the project's .gitignore.
$(SDK_STAMP): tests/sdk/requirements.txt
	test -x $(SDK_VENV)/bin/python || $(PYTHON) -m venv $(SDK_VENV)
	echo '*' > $(SDK_VENV)/.gitignore
	$(SDK_VENV)/bin/python -m pip install -q --upgrade pip
	$(SDK_VENV)/bin/python -m pip install -q -r tests/sdk/requirements.txt
	touch $@

# --- Clients in other languages: descriptor set, stubs from buf.gen.yaml, the Go and Node examples ---------

.PHONY: descriptor client-deps go-deps protoc-deps node-deps client-stubs check-client-stubs go-example node-example

DESCRIPTOR := build/xpander-bridge.binpb
RPC_DESCRIPTOR := build/google-rpc.binpb
CLIENT_STUB_DIRS := examples/go/gen examples/node/src/gen examples/node/src/gen-rpc
NODE_STAMP := examples/node/node_modules/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# The Go example builds in GOPATH mode against Debian's library sources: no Go module proxy is reachable.
# golang-github-golang-protobuf-1-5-dev is named because genproto also accepts the 1.3 line, which cannot
# carry the APIv2 code protoc-gen-go 1.28 writes.
GO_DEBS := golang-go golang-google-grpc-dev golang-google-protobuf-dev golang-github-golang-protobuf-1-5-dev \
	golang-google-genproto-dev protoc-gen-go protoc-gen-go-grpc
# protoc's built-in Java and C# generators, and the gRPC Java plugin.
PROTOC_DEBS := protobuf-compiler protobuf-compiler-grpc-java-plugin
GO_ENV := GO111MODULE=off GOFLAGS= GOPATH=$(CURDIR)/build/gopath:/usr/share/gocode

# Installs the Debian packages in $(1) that dpkg does not have; `apt-get update` runs only when one is missing.
define apt_install
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
		| grep -q '^install ok installed$$' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:" $$missing; \
		$(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
endef

# For Envoy's gRPC-JSON transcoder and reflection-less clients (grpcurl -protoset): every import included.
descriptor: $(DESCRIPTOR) $(RPC_DESCRIPTOR)

$(DESCRIPTOR): $(PROTO_FILES) $(STAMP)
	mkdir -p $(@D)
	$(BIN)/python -m grpc_tools.protoc -I protos -I $(GOOGLEAPIS) --include_imports --include_source_info \
		--descriptor_set_out=$@ $(PROTO_FILES)

$(RPC_DESCRIPTOR): $(STAMP)
	mkdir -p $(@D)
	$(BIN)/python -m grpc_tools.protoc -I $(GOOGLEAPIS) --include_imports --include_source_info \
		--descriptor_set_out=$@ google/rpc/status.proto google/rpc/error_details.proto

client-deps: go-deps protoc-deps node-deps

go-deps:
	$(call apt_install,$(GO_DEBS))

protoc-deps:
	$(call apt_install,$(PROTOC_DEBS))

node-deps: $(NODE_STAMP)

$(NODE_STAMP): examples/node/package.json examples/node/package-lock.json
	@command -v npm >/dev/null || { $(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm; }
	cd examples/node && npm ci --no-audit --no-fund --loglevel=error
	touch $@

client-stubs: descriptor client-deps
	rm -rf $(CLIENT_STUB_DIRS) build/clients
	$(BIN)/buf generate $(DESCRIPTOR) --template buf.gen.yaml --path xpander
	$(BIN)/buf generate $(RPC_DESCRIPTOR) --template examples/node/buf.gen.yaml --path google/rpc

check-client-stubs: client-stubs
	@git diff --exit-code --stat -- $(CLIENT_STUB_DIRS) || (echo "client stubs are stale: run 'make client-stubs' and commit" && exit 1)
	@test -z "$$(git status --porcelain -- $(CLIENT_STUB_DIRS))" || (git status --porcelain -- $(CLIENT_STUB_DIRS) && echo "untracked client stubs" && exit 1)

# build/gopath holds one symlink that gives examples/go/gen the import path of the protos' go_package.
go-example: go-deps
	mkdir -p build/gopath/src/github.com/xpander-ai/xpander-bridge/gen
	ln -sfn $(CURDIR)/examples/go/gen build/gopath/src/github.com/xpander-ai/xpander-bridge/gen/go
	cd examples/go && $(GO_ENV) go build -o $(CURDIR)/build/go/bridge-example .

node-example: node-deps
	cd examples/node && npm run --silent build

# --- Benchmarks (bench/, bench/README.md): h2load, the bench extra and the SDK venv ------------------------------

.PHONY: bench bench-tools

BENCH_STAMP := $(VENV)/.bench-installed
# e.g. BENCH_ARGS="--plan full" (M9 at 100,000 cycles), BENCH_ARGS=--no-wait, or, to compare two commits,
# BENCH_ARGS="--plan quick" then BENCH_ARGS="--plan quick --tree ../other-checkout --out build/bench-other"
BENCH_ARGS ?=

# h2load drives the benchmarks; the test suite's harness smoke test needs it too.
bench-tools:
	$(call apt_install,nghttp2-client)

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
	touch $@

bench: install sdk-venv bench-tools $(BENCH_STAMP)
	$(BIN)/python -m bench.run $(BENCH_ARGS)
