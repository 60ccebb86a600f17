# The two quickstart commands (README): `make demo` and `make test`.
# Each sets up .venv on first use (no manual step). On a machine without an NVIDIA
# GPU the pinned CPU torch from constraints/cpu.txt is installed (never a CUDA
# build); with a GPU the venv sees the system's own torch and keeps it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HAS_GPU := $(shell nvidia-smi -L >/dev/null 2>&1 && echo 1)
VENV_FLAGS := $(if $(HAS_GPU),--system-site-packages,)
CONSTRAINTS := $(if $(HAS_GPU),,-c constraints/cpu.txt)

.PHONY: setup ocr-engine browser demo test clean

setup: $(BIN)/.installed

$(BIN)/.installed: pyproject.toml constraints/cpu.txt
	$(PYTHON) -m venv $(VENV_FLAGS) $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check $(CONSTRAINTS) -e ".[dev]"
	$(if $(HAS_GPU),,$(BIN)/python -c "import sys, torch; v = torch.__version__; sys.exit(0 if v.endswith('+cpu') else 'expected a CPU build of torch, got ' + v)")
	touch $@

# The OCR reward's engine: the tesseract program, from the system's package manager
# (apt-get on Debian/Ubuntu, through sudo when not root). Only the tests need it.
ocr-engine:
	@command -v tesseract >/dev/null 2>&1 || { \
	  S=$$([ "$$(id -u)" = 0 ] || echo sudo); command -v apt-get >/dev/null 2>&1 && \
	  echo "installing tesseract-ocr (the OCR reward's engine) with apt-get" && \
	  $$S apt-get -qq update && $$S env DEBIAN_FRONTEND=noninteractive apt-get -qq install -y tesseract-ocr >/dev/null; \
	} || { echo "the OCR reward needs the tesseract program: install the tesseract-ocr package" >&2; exit 1; }

# The report's browser test: Debian's Chromium (driven by Playwright, which is told
# where it is: no browser download). Only the tests need it.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  S=$$([ "$$(id -u)" = 0 ] || echo sudo); command -v apt-get >/dev/null 2>&1 && \
	  echo "installing chromium (the report's browser test) with apt-get" && \
	  $$S apt-get -qq update && $$S env DEBIAN_FRONTEND=noninteractive apt-get -qq install -y chromium >/dev/null; \
	} || { echo "the report's browser test needs Chromium: install the chromium package" >&2; exit 1; }

demo: setup
	$(BIN)/adascope-ray train configs/tiny.yaml run.overwrite=true

test: setup ocr-engine browser
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) runs .pytest_cache
