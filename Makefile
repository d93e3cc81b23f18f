# Entry points. `make help` lists them.
PYTHON ?= python3
PRESET ?= cpu
SEEDS ?= 42 271

.PHONY: help install test test-slow bench ci-e2e clean

help:
	@echo "make install     pip install -r requirements.txt"
	@echo "make test        the fast test suite (python -m pytest -q)"
	@echo "make test-slow   the slow tests"
	@echo "make bench       throughput and memory benchmarks"
	@echo "make clean       remove build artifacts (not runs/)"

install:
	$(PYTHON) -m pip install -r requirements.txt

test:
	$(PYTHON) -m pytest -q

test-slow:
	$(PYTHON) -m pytest -q -m slow

bench:
	$(PYTHON) -m bench.train_throughput --preset $(PRESET)

ci-e2e:
	rm -rf runs/ci_tiny
	$(PYTHON) train.py --preset tiny --seed 1 --out runs/ci_tiny --no-progress

clean:
	rm -rf paper/build .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
