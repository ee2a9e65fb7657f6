# The course's two commands (README):
#   make book   build the executed book at default scale into _build/default
#   make test   unit tests, then a strict smoke-scale build with forced execution
# Each creates (or reuses) the virtual environment .venv with the pinned packages.

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ROOT := $(CURDIR)

# Tools' caches and configuration stay inside the checkout, never in $HOME.
TOOL_DIRS := XDG_CACHE_HOME=$(ROOT)/.cache/xdg MPLCONFIGDIR=$(ROOT)/.cache/matplotlib \
	IPYTHONDIR=$(ROOT)/.cache/ipython JUPYTER_CONFIG_DIR=$(ROOT)/.cache/jupyter/config \
	JUPYTER_DATA_DIR=$(ROOT)/.cache/jupyter/data JUPYTER_RUNTIME_DIR=$(ROOT)/.cache/jupyter/runtime \
	JUPYTER_PLATFORM_DIRS=1

.PHONY: book test venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11, or run make PYTHON=/path/to/python3.11"; exit 1; }
	$(TOOL_DIRS) $(PYTHON) -m venv $(VENV)
	$(TOOL_DIRS) $(PY) -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

book: $(STAMP)
	$(TOOL_DIRS) $(PY) -m course_utils build-book --scale default --execute cache
	@echo "Open $(ROOT)/_build/default/_build/html/index.html"

test: $(STAMP)
	$(TOOL_DIRS) COURSE_OFFLINE=1 $(PY) -m pytest
	$(TOOL_DIRS) COURSE_OFFLINE=1 $(PY) -m course_utils build-book --scale smoke --execute force
	$(TOOL_DIRS) $(PY) -m pytest -m browser tests/test_browser.py

clean:
	rm -rf _build .cache
