# kvsite: `make run` serves a development instance, `make test` checks lint, format and types, then runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

WORKERS ?= 4
SERVE_ENV := .serve.env

.PHONY: run test install lint format serve bench clean

$(BIN)/activate: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(BIN)/activate

install: $(BIN)/activate

# One process: migrate, the local admin (printed once), uvicorn; it ends with a block saying how to get in.
run: install
	DJANGO_DEBUG=1 $(BIN)/python manage.py runlocal --host $(HOST) --port $(PORT)

test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest

# The production profile, locally: PostgreSQL + Redis, debug off, several worker
# processes (gunicorn managing uvicorn workers: HTTP and WebSocket on one port),
# whitenoise for static files (from the source folders: no collectstatic), and the sweeper. First run writes random secrets
# to $(SERVE_ENV) (gitignored); DATABASE_URL / REDIS_URL from the environment win.
serve: install
	@test -f $(SERVE_ENV) || { \
	  echo "DJANGO_SECRET_KEY=$$($(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(50))')"; \
	  echo "KV_MASTER_KEYS=k1:$$($(BIN)/python -c 'import base64,os; print(base64.b64encode(os.urandom(32)).decode())')"; \
	} > $(SERVE_ENV) && chmod 600 $(SERVE_ENV)
	set -a && . ./$(SERVE_ENV) && set +a && \
	export DJANGO_DEBUG=0 DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/kvsite} \
	       REDIS_URL=$${REDIS_URL:-redis://127.0.0.1:6379/0} DJANGO_SECURE_COOKIES=$${DJANGO_SECURE_COOKIES:-0} \
	       PROMETHEUS_MULTIPROC_DIR=$$(mktemp -d) && \
	(createdb -h 127.0.0.1 -U postgres kvsite 2>/dev/null || true) && \
	$(BIN)/python manage.py migrate --noinput && \
	$(BIN)/python manage.py ensure_local_admin && \
	{ $(BIN)/python manage.py kv_sweep --loop & } && \
	$(BIN)/gunicorn kvsite.asgi:application --worker-class uvicorn.workers.UvicornWorker \
	  --workers $(WORKERS) --bind $(HOST):$(PORT) --graceful-timeout 10 --log-level info

# Every benchmark in sequence (PostgreSQL + Redis on this machine); rewrites bench/README.md.
bench: install
	$(BIN)/python bench/report.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) db.sqlite3* .test-db-*.sqlite3* staticfiles
