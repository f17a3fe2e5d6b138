# Milepost: `make run` starts the app with demo data, `make test` runs the whole suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
SUDO := $(shell [ "$$(id -u)" = "0" ] || echo sudo)

# `make run` is for a developer's machine: debug mode, files under var/ unless
# DATABASE_URL / REDIS_URL / EMAIL_URL say otherwise.
RUN_ENV := DEBUG=$${DEBUG:-true} SITE_URL=$${SITE_URL:-http://127.0.0.1:$(PORT)}
# The suite runs with production-like settings (DEBUG off) and a throwaway key. Tasks run
# eagerly in the test process; the integration tests start real workers with eager mode off.
TEST_ENV := DEBUG=false SECRET_KEY=$${SECRET_KEY:-milepost-test-only-key} \
	SECURE_SSL_REDIRECT=false SECURE_COOKIES=false ALLOWED_HOSTS='*' \
	DJANGO_ALLOW_ASYNC_UNSAFE=true CELERY_TASK_ALWAYS_EAGER=true

.PHONY: install run test system-packages lint format migrate clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Milepost needs Python 3.11, found " + sys.version' 
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	@[ -f .env ] || printf '# Local settings for this checkout (git-ignored); the environment wins.\nDEBUG=true\n' > .env
	@touch $@

var:
	@mkdir -p var/mail var/broker/queue var/broker/control var/cache var/static

migrate: install var
	$(RUN_ENV) $(BIN)/python manage.py migrate --noinput

run: migrate
	@$(RUN_ENV) $(BIN)/python manage.py seed_demo --if-empty
	@echo ""
	@echo "  Milepost is starting on http://127.0.0.1:$(PORT)/"
	@echo "  Demo logins (password: milepost-demo): alice (admin), bob (member),"
	@echo "  priya (product owner), omar (operations lead), vera (viewer)."
	@echo "  Mail is written to var/mail/ unless EMAIL_URL is set. Stop with Ctrl-C."
	@echo ""
	@$(RUN_ENV) PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho start --port $(PORT) --procfile Procfile

# Debian's chromium drives the browser tests (Playwright never downloads a browser); the
# integration tests start their own redis-server when REDIS_URL is not set.
SYSTEM_PACKAGES := chromium:chromium redis-server:redis-server
system-packages:
	@missing=""; for pair in $(SYSTEM_PACKAGES); do \
		command -v $${pair%%:*} >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; done; \
	if [ -n "$$missing" ]; then \
		echo "Installing Debian packages:$$missing"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; fi

# pytest exits 5 when it collected nothing: this suite always has tests, so that is a failure.
test: install system-packages var
	@$(TEST_ENV) $(BIN)/pytest $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests: treating that as a failure."; fi; \
	exit $$status

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf var/broker var/cache var/mail var/celerybeat-schedule*
