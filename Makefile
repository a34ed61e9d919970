# Two commands do all the set-up (see README):  make demo   and   make test
# Both are idempotent: the venv is rebuilt only when pyproject.toml changes.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
FASHION_MNIST := /usr/share/datasets/fashion-mnist

.PHONY: demo test test-fast install data benchmark figures docs

demo: install data
	$(BIN)/python demo.py --activation mila --model_initialization class

test: install data
	$(BIN)/python -m pytest

# The quick subset while working (under 3 minutes on 2 cores): all but the tests marked slow
# (those that train for real, run many commands or sweeps) and slurm. `make test` runs them all.
test-fast: install data
	$(BIN)/python -m pytest -m "not slow and not slurm"

benchmark: install data
	$(BIN)/python benchmarks/demo_speed.py

# The example figures of the docs (docs/figures/; the README shows noise.png): PNG + CSV per
# figure. noise and depth train 3 seeds of each of 3 activations at the demo's settings (5 epochs,
# all 60,000 images), one torch thread per run (the thread count changes the last bits of a result;
# one keeps them repeatable from machine to machine), and compare the activations seed by seed
# (*_pairs.csv).
FIGURES := docs/figures
figures: install data
	$(BIN)/mila-bench plot function -a relu -a swish -a mish --out $(FIGURES) --dpi 80
	$(BIN)/mila-bench plot contour --out $(FIGURES) --dpi 80
	$(BIN)/mila-bench plot landscape --seeds 10 --points 120 --out $(FIGURES) --dpi 80
	$(BIN)/mila-bench plot gradients --points 100 --arrows 12 --out $(FIGURES) --dpi 80
	$(BIN)/mila-bench plot noise --seeds 3 --out $(FIGURES) --dpi 80 trainer.threads=1
	$(BIN)/mila-bench plot depth --seeds 3 --out $(FIGURES) --dpi 80 trainer.threads=1

# The docs site (mkdocs.yml, docs/) into site/; --strict fails on any warning (a broken link, a missing page).
# The CLI and configuration references are generated from the Typer app and configs/ at build time.
docs: install
	DISABLE_MKDOCS_2_WARNING=true NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -e '.[test]'
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
