# Yunguan: `make demo` starts the platform; `make test` runs the whole suite (SQLite, then
# PostgreSQL). Everything either needs is installed by the targets themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
ASSETS := yunguan/web/assets
VENDOR := yunguan/web/static/vendor
PYTEST := $(BIN)/pytest -p no:cacheprovider -n 2 --dist loadfile

.PHONY: demo serve test test-sqlite test-postgres lint bench runtime test-deps assets clean

demo: runtime
	$(BIN)/yunguan serve --demo

test: test-deps lint test-sqlite test-postgres

test-sqlite: test-deps
	$(PYTEST)

test-postgres: test-deps
	YUNGUAN_TEST_BACKEND=postgres $(BIN)/python -m tests.support.pgcluster -- $(PYTEST)

lint: test-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: test-deps
	scripts/system-deps.sh bench
	$(BIN)/python -m tests.support.pgcluster --durable -- $(BIN)/python -m bench.api
	$(BIN)/python -m tests.support.pgcluster --durable -- $(BIN)/python -m bench.scheduler
	$(BIN)/python -m tests.support.pgcluster --durable -- $(BIN)/python -m bench.quota
	$(BIN)/python -m tests.support.pgcluster --durable -- $(BIN)/python -m bench.ipam
	$(BIN)/python -m tests.support.pgcluster --durable -- $(BIN)/python -m bench.sdn
	$(BIN)/python -m tests.support.pgcluster --durable -- $(BIN)/python -m bench.provision
	$(BIN)/python -m tests.support.pgcluster --durable -- $(BIN)/python -m bench.dataplane
	for case in ingest rate month_end; do BENCH_CASES=$$case $(BIN)/python -m tests.support.pgcluster --durable -- $(BIN)/python -m bench.billing || exit 1; done



runtime: $(VENV)/.runtime assets
test-deps: $(VENV)/.test assets

$(VENV)/.runtime: pyproject.toml
	scripts/system-deps.sh runtime
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.test: pyproject.toml $(VENV)/.runtime
	scripts/system-deps.sh test
	$(BIN)/pip install -q -e '.[test]'
	touch $@

assets: $(VENDOR)/htmx.min.js

$(VENDOR)/htmx.min.js: $(ASSETS)/package.json $(ASSETS)/package-lock.json
	cd $(ASSETS) && npm ci --no-audit --no-fund --loglevel=error
	mkdir -p $(VENDOR)
	cp $(ASSETS)/node_modules/htmx.org/dist/htmx.min.js $(VENDOR)/
	cp $(ASSETS)/node_modules/@picocss/pico/css/pico.min.css $(VENDOR)/

clean:
	rm -rf $(VENV) $(ASSETS)/node_modules $(VENDOR)
