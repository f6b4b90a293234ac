# The two commands that matter: `make run` and `make test`. Both bootstrap .venv on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench install clean dashboard frontend-test soak faults

$(STAMP): pyproject.toml
	@echo "==> installing AgentOps and its dependencies into $(VENV) (the first time takes a few minutes)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	@# not --quiet: each package pip collects and installs is a line, so a long first install shows it works
	$(BIN)/pip install --progress-bar off -e '.[test]'
	@echo "==> installed"
	touch $(STAMP)

install: $(STAMP)

# The dashboard: built when Node.js is present; without it the API still runs and `make run` says so.
NODE_STAMP := frontend/node_modules/.installed
$(NODE_STAMP): frontend/package.json frontend/package-lock.json
	@echo "==> installing the dashboard's packages (npm ci)"
	cd frontend && npm ci --no-audit --no-fund
	touch $(NODE_STAMP)

dashboard:
	@if command -v npm >/dev/null 2>&1; then \
		$(MAKE) --no-print-directory $(NODE_STAMP) && cd frontend && npm run build; \
	else \
		echo "*** Node.js/npm not found: the API runs, but the dashboard is not built."; \
		echo "*** Install Node.js 18+ and run 'make run' again to get it at http://127.0.0.1:8000/"; \
	fi

# Frontend checks: types, Vitest, and the build the browser tests use. CI must have Node.
frontend-test:
	@if command -v npm >/dev/null 2>&1; then \
		$(MAKE) --no-print-directory $(NODE_STAMP) && cd frontend && npm run typecheck && npm test && npm run build; \
	elif [ -n "$$CI" ]; then \
		echo "Node.js/npm is required in CI for the dashboard tests"; exit 1; \
	else \
		echo "*** Node.js/npm not found: skipping the dashboard's tests (the browser tests will skip too)"; \
	fi

run: $(STAMP) dashboard
	$(BIN)/agentops up

lint: $(STAMP)
	$(BIN)/ruff check shared services tests bench
	$(BIN)/ruff format --check shared services tests bench
	$(BIN)/mypy shared services

# Everything, the fault suite included (tests/faults, about a minute; `make faults` runs it alone).
test: lint frontend-test
	$(BIN)/pytest -q

faults: $(STAMP)
	$(BIN)/pytest -q tests/faults

bench: $(STAMP)
	$(BIN)/python -m bench.planner
	$(BIN)/python -m bench.audit
	$(BIN)/python -m bench.pipeline --commands 500
	$(BIN)/python -m bench.observability
	$(BIN)/python -m bench.tracing_hop
	$(BIN)/python -m bench.fanout
	$(BIN)/python -m bench.sustained

# The fault tests at a larger load (about 10 minutes): FAULT_COMMANDS commands per fault.
soak: $(STAMP)
	FAULT_COMMANDS=$${FAULT_COMMANDS:-4000} $(BIN)/pytest -q tests/faults

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
