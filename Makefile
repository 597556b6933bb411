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
	$(BIN)/ruff check bridge tests
	$(BIN)/ruff format --check bridge tests

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/pytest -q

test: install buf-lint check-generated lint typecheck pytest

run: install
	$(BIN)/xpander-bridge serve --local-platform --listen 127.0.0.1:50051

local-platform: install
	$(BIN)/xpander-bridge local-platform --listen 127.0.0.1:9016

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
