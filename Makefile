# The two commands a new machine needs:  make demo   and   make test
.PHONY: demo test venv sysdeps services sim worker lint bench

PY := .venv/bin/python
# The suite runs on real PostgreSQL and Redis (override on the command line if yours differ).
TEST_DATABASE_URL ?= postgres://root@127.0.0.1:5432/test
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0

venv:
	@scripts/bootstrap.sh

sysdeps:
	@scripts/sysdeps.sh

services:
	@scripts/services.sh

## demo: set up (virtualenv, migrate, demo keys and users) and run web, worker, beat and simulators
demo: venv
	@scripts/demo.sh

## test: install what the suite needs, make sure PostgreSQL and Redis run, run the whole suite (on
## PostgreSQL), then the hostile-input tests once more on SQLite, the demo's database
test: venv sysdeps services
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) HOSPITAL_INTEROP_VAR_DIR=$(CURDIR)/var/test \
	  $(PY) -m pytest $(PYTEST_ARGS)
	DATABASE_URL=sqlite:///$(CURDIR)/var/test/sqlite.sqlite3 REDIS_URL=$(TEST_REDIS_URL) HOSPITAL_INTEROP_VAR_DIR=$(CURDIR)/var/test \
	  $(PY) -m pytest -q -p no:cacheprovider -m "not slow" tests/integrations

## sim: the municipal platform simulator alone (port 8701, its own SQLite, demo keys)
sim: venv
	$(PY) -m simulators.platform --host 127.0.0.1 --port 8701 --db var/platform-sim.sqlite3 --keys var/keys --ensure-keys

lint: venv
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
