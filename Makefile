# Two commands do all the set-up (see README):  make demo   and   make test
# make demo installs only mila-bench itself (pip install -e .); make test adds the test extras
# (.[test]: the trackers, the docs site, Keras). Both are idempotent: each install is redone only
# when pyproject.toml changes (stamp files in the venv).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
FASHION_MNIST := /usr/share/datasets/fashion-mnist

.PHONY: demo test test-fast install install-demo data benchmark figures docs

demo: install-demo data
	$(BIN)/python demo.py --activation mila --model_initialization class

test: install data
	$(BIN)/python -m pytest

# The quick subset while working (under 3 minutes on 2 cores): all but the tests marked slow
# (those that train for real, run many commands or sweeps) and slurm. `make test` runs them all.
test-fast: install data
	$(BIN)/python -m pytest -m "not slow and not slurm"

benchmark: install-demo data
	$(BIN)/python benchmarks/demo_speed.py

# The example figures of the docs (docs/figures/; the README shows noise.png): PNG + CSV per
# figure. noise and depth train 3 seeds of each of 3 activations at the demo's settings (5 epochs,
# all 60,000 images), one torch thread per run (the thread count changes the last bits of a result;
# one keeps them repeatable from machine to machine), and compare the activations seed by seed
# (*_pairs.csv).
FIGURES := docs/figures
figures: install-demo data
	$(BIN)/mila-bench plot function -a relu -a swish -a mish --out $(FIGURES) --dpi 80
	$(BIN)/mila-bench plot contour --out $(FIGURES) --dpi 80
	$(BIN)/mila-bench plot landscape --seeds 10 --points 120 --out $(FIGURES) --dpi 80
	$(BIN)/mila-bench plot gradients --points 100 --arrows 12 --out $(FIGURES) --dpi 80
	$(BIN)/mila-bench plot noise --seeds 3 --out $(FIGURES) --dpi 80 trainer.threads=1
	$(BIN)/mila-bench plot depth --seeds 3 --out $(FIGURES) --dpi 80 trainer.threads=1

# The docs site (mkdocs.yml, docs/) into site/; --strict fails on any warning (a broken link, a missing page).
# The CLI and configuration references are generated from the Typer app and configs/ at build time.
docs: $(VENV)/.installed-docs
	DISABLE_MKDOCS_2_WARNING=true NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# install: everything the tests need (what make test and make test-fast use); install-demo: mila-bench alone.
install: $(VENV)/.installed-test
install-demo: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -e .
	touch $@

# An extra of pyproject.toml on top of mila-bench: .installed-test, .installed-docs
$(VENV)/.installed-%: $(VENV)/.installed
	$(BIN)/python -m pip install -e '.[$*]'
	touch $@

# Debian's copy of Fashion-MNIST, so nothing has to be downloaded. Without apt (or root),
# mila-bench falls back to torchvision's download.
data:
	@if [ ! -f $(FASHION_MNIST)/train-images-idx3-ubyte.gz ]; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    apt-get update && apt-get install -y dataset-fashion-mnist; \
	  else \
	    echo "note: $(FASHION_MNIST) missing and apt-get not usable; torchvision will download Fashion-MNIST"; \
	  fi; \
	fi
