# Two set-up commands on a fresh machine: `make up` (the whole pipeline) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install up test lint bench clean

$(STAMP): pyproject.toml
	bash scripts/install.sh $(VENV)
	touch $(STAMP)

install: $(STAMP)

up: $(STAMP)
	$(VENV)/bin/clickmuncher up

test: $(STAMP)
	bash scripts/test.sh $(VENV)

lint: $(STAMP)
	$(VENV)/bin/ruff check clickmuncher gateway streams sinks api tests bench
	$(VENV)/bin/ruff format --check clickmuncher gateway streams sinks api tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

bench: $(STAMP)
	bash bench/run_all.sh $(VENV)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
