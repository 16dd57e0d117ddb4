# Two commands matter: `make run` and `make test`. Both set everything up from a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml clients/python/pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test lint format install browser migrate demo clean screenshots

$(STAMP): pyproject.toml clients/python/pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]' -e clients/python
	@rm -f $(VENV)/.installed-*
	@touch $@

install: $(STAMP)

# Debian's chromium for the browser tests; skipped (tests then skip with a reason) where it
# cannot be installed, e.g. without root or apt.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing Debian's chromium for the browser tests..."; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "chromium could not be installed; browser tests will be skipped."; \
	  else echo "chromium is not installed; browser tests will be skipped."; fi; }

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: install browser lint
	DEBUG=true $(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/pytest $(PYTEST_ARGS)

# The demo integrations call the fake provider on loopback, which egress refuses unless it is
# allowed; any SWITCHYARD_EGRESS_ALLOW already set is kept, the fake provider appended.
comma := ,
run: export SWITCHYARD_EGRESS_ALLOW := $(if $(SWITCHYARD_EGRESS_ALLOW),$(SWITCHYARD_EGRESS_ALLOW)$(comma))127.0.0.1:$(or $(FAKEPROVIDER_PORT),9100)
run: install
	@mkdir -p var
	DEBUG=true $(BIN)/python manage.py migrate --no-input
	DEBUG=true $(BIN)/python manage.py collectstatic --no-input --verbosity 0
	DEBUG=true $(BIN)/python manage.py seed_demo --key-file var/demo-api-key
	@DEBUG=true $(BIN)/python manage.py welcome --key-file var/demo-api-key
	DEBUG=true PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho start web worker dispatcher fakeprovider

# Every admin screen, opened in Chromium against seeded test data, saved as a PNG.
screenshots: install browser
	@mkdir -p var/screenshots
	SWITCHYARD_SCREENSHOTS_DIR=$(CURDIR)/var/screenshots $(BIN)/pytest -q -p no:cacheprovider tests/browser/test_screenshots.py
	@echo "Screenshots in var/screenshots/"

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .hypothesis
