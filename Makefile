# The two contracts: `make run` serves the portal from a fresh clone, `make test` tests it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 5000
# The development PUBLIC_URL follows it (review_portal.config.development_public_url).
export PORT
export FLASK_APP := review_portal.wsgi

.PHONY: run demo-season test vnu install install-dev translations lint format lock clean system-deps-run system-deps-test

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# The dependencies come from the lock files, every file checked against its hash; the project
# itself is then installed without resolving anything (`make lock` refreshes the locks).
$(VENV)/.installed: pyproject.toml requirements/runtime.txt | $(BIN)/activate
	$(BIN)/pip install --quiet --require-hashes -r requirements/runtime.txt
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml requirements/dev.txt | $(BIN)/activate
	$(BIN)/pip install --quiet --require-hashes -r requirements/dev.txt
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $(VENV)/.installed $@

install: $(VENV)/.installed translations
install-dev: $(VENV)/.installed-dev translations

# Translations are compiled as part of the install (the .mo files are not committed).
translations: | $(BIN)/activate
	$(BIN)/pybabel compile -d review_portal/translations

# The system packages (WeasyPrint's libraries, a font; for the tests Chromium, nginx, Redis):
# installed with apt-get when run as root, otherwise the command to run is printed.
system-deps-run:
	@scripts/system-deps run
system-deps-test:
	@scripts/system-deps test

# The season simulated on first start: small, so the first start is quick (about 10 s on
# two cores); `make demo-season` adds a fuller one.
DEMO_SEASON ?= 12

run: system-deps-run install
	@echo "==> Migrating the database"
	@$(BIN)/flask db upgrade
	@# The demo region and, on first start, a simulated season, so every screen has content.
	@echo "==> Demo data: the region, and on first start a season of $(DEMO_SEASON) programs"
	@$(BIN)/flask seed-demo --season $(DEMO_SEASON)
	@echo "==> Serving on http://127.0.0.1:$(PORT)/ (e-mail: http://127.0.0.1:$(PORT)/dev/mail); Ctrl+C stops"
	@$(BIN)/flask run --host 127.0.0.1 --port $(PORT)

# A second, fuller season in the demo database (48 programs, its own providers and
# experts; about 45 s on two cores), with a progress bar. Once: a second call finds it done.
demo-season: install
	@$(BIN)/flask db upgrade
	@$(BIN)/flask seed-demo --season 48 --season-seed 2027

# The Nu HTML checker (vnu.jar, from npm) of tests/test_html_validity.py: `npm ci` from the
# lock (integrity hashes) when node_modules is missing or older than the lock; no install
# scripts (tests/vnu/.npmrc). Without npm the test skips itself (scripts/system-deps says why).
VNU_DIR := tests/vnu
vnu:
	@if [ "$(VNU_DIR)/node_modules/.package-lock.json" -nt "$(VNU_DIR)/package-lock.json" ]; then :; \
	elif command -v npm >/dev/null 2>&1; then \
	  echo "==> Installing the HTML checker (npm ci in $(VNU_DIR))"; \
	  npm ci --prefix $(VNU_DIR) --ignore-scripts --no-audit --no-fund --loglevel=error; \
	else echo "vnu: npm is missing, the HTML validity test will be skipped" >&2; fi

test: system-deps-test install-dev vnu
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -q -p no:cacheprovider -n auto --dist loadscope

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Refresh the catalog after changing interface texts, then translate the new entries.
extract: | $(BIN)/activate
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext -k _lp:1c,2 -k lazy_pgettext:1c,2 -o review_portal/translations/messages.pot .
	$(BIN)/pybabel update -i review_portal/translations/messages.pot -d review_portal/translations --no-fuzzy-matching --ignore-obsolete

# Re-resolve the lock files after changing the dependencies in pyproject.toml (pip-tools):
# the runtime set first, then the development set constrained to the same versions.
LOCK_OPTIONS := --quiet --generate-hashes --allow-unsafe --strip-extras --all-build-deps \
	--no-emit-find-links --no-emit-index-url --no-emit-trusted-host
lock: | $(BIN)/activate
	$(BIN)/pip install --quiet 'pip-tools>=7.4,<8'
	$(BIN)/pip-compile $(LOCK_OPTIONS) -o requirements/runtime.txt pyproject.toml
	$(BIN)/pip-compile $(LOCK_OPTIONS) --extra dev -c requirements/runtime.txt \
		-o requirements/dev.txt pyproject.toml

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
