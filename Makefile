# stalenb — the two commands: `make reproduce` and `make test`.
# Both create .venv and install the project when needed; a fresh clone needs nothing else.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.stalenb-installed
SHARED_MNIST := ../shared/data/mnist10k/MNIST

# Quiet, deterministic runs of the tools.
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export MPLBACKEND := Agg
export PYTHONHASHSEED := 0

.PHONY: help venv data browser browser-panels lint test test-unit test-notebooks reproduce reproduce-quick report bench notebooks strip lock clean-cache

help:
	@echo "make reproduce   run every notebook in order (paper profile), write figures/"
	@echo "make test        unit tests + every notebook through nbval (quick) + browser test"
	@echo "make browser-panels  every notebook in JupyterLab, each panel photographed (build/browser/panels)"
	@echo "make report      the executed notebooks as a static HTML site (build/report/index.html)"
	@echo "make bench       speed ratios of the simulator against plain PyTorch loops"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[notebooks,cluster,test]"
	touch $(STAMP)

# Notebooks stay clean under use (JupyterLab's saves, autosave included, leave `git status` clean):
# - the Jupyter server of this environment strips outputs from the project's paired notebooks as it
#   saves them (a pre-save hook: tools/jupyter_server_config.py, copied into the environment);
# - the `python3` kernel is named "Python 3", as the notebooks and their .py pairs name it (ipykernel's
#   own spec says "Python 3 (ipykernel)", which a save would write into both files).
JUPYTER_CONFIG := $(VENV)/etc/jupyter/jupyter_server_config.py
KERNEL_SPEC := $(VENV)/share/jupyter/kernels/python3/kernel.json

venv: $(STAMP)
	@cmp -s tools/jupyter_server_config.py $(JUPYTER_CONFIG) || { mkdir -p $(dir $(JUPYTER_CONFIG)) && \
	  cp tools/jupyter_server_config.py $(JUPYTER_CONFIG) && echo "installed $(JUPYTER_CONFIG)"; }
	@grep -qs '"display_name": "Python 3",' $(KERNEL_SPEC) || \
	  $(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3"

# MNIST for tests and offline runs: link the 8k/2k split from ../shared when data/MNIST is absent.
data:
	@if [ ! -e data/MNIST ] && [ -d $(SHARED_MNIST) ]; then \
	  ln -s "$$(cd $(SHARED_MNIST) && pwd)" data/MNIST && echo "linked $(SHARED_MNIST) -> data/MNIST"; \
	fi

# Debian's Chromium for the browser test (Playwright's own browser download is not used).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian chromium (needs root + apt-get)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

lint: venv
	$(BIN)/ruff check stalenb tests notebooks

test: venv data browser lint
	STALENB_QUICK=1 TQDM_DISABLE=1 $(BIN)/python -m pytest tests notebooks --nbval-lax --nbval-cell-timeout=900 -p no:cacheprovider

# Every notebook in JupyterLab, each panel photographed to build/browser/panels/ (minutes; not in make test).
browser-panels: venv data browser
	STALENB_QUICK=1 TQDM_DISABLE=1 STALENB_BROWSER_PANELS=1 $(BIN)/python -m pytest tests/test_browser.py \
	  -k every_panel -p no:cacheprovider

test-unit: venv data
	STALENB_QUICK=1 TQDM_DISABLE=1 $(BIN)/python -m pytest tests -p no:cacheprovider

test-notebooks: venv data
	STALENB_QUICK=1 TQDM_DISABLE=1 $(BIN)/python -m pytest notebooks --nbval-lax --nbval-cell-timeout=900 -p no:cacheprovider

reproduce: venv data
	$(BIN)/python -m stalenb.repro.reproduce

# The executed notebooks (build/notebooks, from make reproduce) as a static site with a claims index.
report: venv
	$(BIN)/python -m stalenb.repro.report

reproduce-quick: venv data
	STALENB_QUICK=1 $(BIN)/python -m stalenb.repro.reproduce --quick

bench: venv data
	$(BIN)/python -m stalenb.repro.bench

# Notebooks are jupytext pairs: edit notebooks/NN_name.py (py:percent), then sync the .ipynb.
notebooks: venv
	$(BIN)/jupytext --sync notebooks/[0-9][0-9]_*.py
	$(BIN)/nbstripout notebooks/*.ipynb

# Strip notebook outputs (tags are kept); CI checks with nbstripout --verify.
strip: venv
	$(BIN)/nbstripout notebooks/*.ipynb

# requirements-lock.txt: the exact versions of the dependency closure of stalenb[notebooks,cluster,test]
# in this .venv (the versions behind the committed figures/ and claims). Regenerate after an upgrade.
lock: venv
	$(BIN)/python tools/lock.py > requirements-lock.txt

clean-cache:
	rm -rf cache build
