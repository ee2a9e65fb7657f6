# The course's two commands (README):
#   make book   build the executed book at default scale into _build/default
#   make test   unit tests, then a strict smoke-scale build with forced execution
# Each creates (or reuses) the virtual environment .venv with the tested versions
# (constraints.txt). Other Pythons: make test PYTHON=python3.13 (3.11 to 3.13).
# make unit runs the unit tests alone (CI runs them on the newest Python too); make lint runs
# ruff's checks and its format check (fix with: .venv/bin/ruff check --fix . && .venv/bin/ruff format .).

PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(notdir $(PYTHON))
ROOT := $(CURDIR)
# Which PyTorch build to install on Linux: "cpu" (PyTorch's CPU wheels, the default: the
# package index's Linux wheel is the CUDA build, several GB), "pypi" (the package index's
# build), or the URL of a PyTorch wheel index (e.g. .../whl/cu126 for a GPU). macOS and
# Windows always take the package index's build, which is the CPU one (tools/install_torch.py).
TORCH ?= cpu
# Extra pytest arguments of `make unit`, e.g. PYTEST_ARGS='-m "not browser"' to run the
# attendee notebooks too (marker rerun, not in the default run).
PYTEST_ARGS ?=

# Tools' caches and configuration stay inside the checkout, never in $HOME.
TOOL_DIRS := XDG_CACHE_HOME=$(ROOT)/.cache/xdg MPLCONFIGDIR=$(ROOT)/.cache/matplotlib \
	IPYTHONDIR=$(ROOT)/.cache/ipython JUPYTER_CONFIG_DIR=$(ROOT)/.cache/jupyter/config \
	JUPYTER_DATA_DIR=$(ROOT)/.cache/jupyter/data JUPYTER_RUNTIME_DIR=$(ROOT)/.cache/jupyter/runtime \
	JUPYTER_PLATFORM_DIRS=1
PIP := $(TOOL_DIRS) $(PY) -m pip install --quiet -c constraints.txt

.PHONY: book test lint unit venv clean

venv: $(STAMP)

# The environment is remade when the interpreter asked for is not the one it was made with.
$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11, 3.12 or 3.13, or run make PYTHON=/path/to/python3"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 13))' || { echo "$(PYTHON) is Python $$($(PYTHON) -V 2>&1); the course supports 3.11 to 3.13"; exit 1; }
	@wanted=$$($(PYTHON) -c 'import sys; print(sys.version_info[:2])'); \
	if [ ! -x $(PY) ] || [ "$$($(PY) -c 'import sys; print(sys.version_info[:2])')" != "$$wanted" ]; then \
		echo "creating $(VENV) with $(PYTHON)"; $(TOOL_DIRS) $(PYTHON) -m venv --clear $(VENV); fi
	$(TOOL_DIRS) $(PY) tools/install_torch.py --torch $(TORCH) --constraints constraints.txt
	$(PIP) -e ".[book,dev,cluster]"
	@touch $(STAMP)

book: $(STAMP)
	$(TOOL_DIRS) $(PY) -m course_utils build-book --scale default --execute cache
	@echo "Open $(ROOT)/_build/default/_build/html/index.html"

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

unit: $(STAMP)
	$(TOOL_DIRS) COURSE_OFFLINE=1 $(PY) -m pytest $(PYTEST_ARGS)

test: lint unit
	$(TOOL_DIRS) COURSE_OFFLINE=1 $(PY) -m course_utils build-book --scale smoke --execute force
	$(TOOL_DIRS) $(PY) -m pytest -m browser tests/test_browser.py

clean:
	rm -rf _build .cache
