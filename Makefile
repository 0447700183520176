# make run   - set up .venv and start the app on the shipped model
# make test  - set up .venv (with test tools and Chromium) and run the whole suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DIGITREC_DATA ?= $(abspath ../shared/data/mnist)
export DIGITREC_DATA
PORT ?= 8501

.PHONY: run test lint venv dev chromium bench clean

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev-installed: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed
dev: $(VENV)/.dev-installed

chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Chromium for the end-to-end tests"; \
	  (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || \
	  echo "could not install chromium: the browser tests will be skipped"; }

run: venv
	$(PY) -m streamlit run streamlit_app.py --server.port $(PORT) --server.headless true

test: dev chromium lint
	$(PY) -m pytest -q

lint: dev
	$(VENV)/bin/ruff check .

bench: dev
	$(PY) benchmarks/serving.py
	$(PY) benchmarks/realworld.py
	$(PY) benchmarks/train_speed.py
	$(PY) benchmarks/load.py
	$(PY) benchmarks/api.py
	$(PY) benchmarks/archive.py

clean:
	rm -rf $(VENV) .pytest_cache
