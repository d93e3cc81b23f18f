# Entry points; `make help` lists them. PRESET picks the scale (cpu: offline, 2 cores; paper: GPU, TinyStories).
PYTHON ?= python3
PRESET ?= cpu
SEEDS ?= 42 271
# Main runs the figures and the report are made from (those that exist).
RUNS ?= $(foreach s,$(SEEDS),runs/$(PRESET)_s$(s))
CONTROLS ?= runs/ctrl_s42
BETA2 ?= runs/beta2_s42
PAPER_DIR := paper
TEX_OPTS := -pdf -interaction=nonstopmode -halt-on-error -outdir=$(PAPER_DIR)/build

.PHONY: help install tex tokenizer test test-slow bench figures report pdf demo reproduce controls ci-e2e clean

help:
	@echo "make demo        fresh machine: TeX check/install, requirements, seed 42 on the cpu preset, figures, PDF"
	@echo "make test        requirements if missing, then the fast test suite (python -m pytest -q)"
	@echo "make tokenizer   fetch and hash-check GPT-2's BPE ranks for tokenizer=gpt2 (offline afterwards)"
	@echo "make reproduce   every experiment on PRESET (=$(PRESET)): seeds $(SEEDS), controls, beta2 sweep, reheating, PDF"
	@echo "make figures     paper figures from the analysis JSON of RUNS -> paper/figures"
	@echo "make pdf         tables + figures from JSON, then paper/paper_backbone.pdf (needs latexmk)"
	@echo "make bench       training throughput, streaming-PCA and null-model benchmarks"
	@echo "make install | tex | tokenizer | test-slow | clean"

# drift.bootstrap uses the standard library only, so these run before anything is installed. install is a no-op
# (well under a second) when every pin in requirements.txt is already satisfied. DRIFT_NO_INSTALL=1: refuse instead.
install:
	@$(PYTHON) -m drift.bootstrap python

tex:
	@$(PYTHON) -m drift.bootstrap tex

tokenizer:
	@$(PYTHON) -m drift.bootstrap gpt2

test: install
	$(PYTHON) -m pytest -q

test-slow: install
	$(PYTHON) -m pytest -q -m slow

bench:
	$(PYTHON) -m bench.train_throughput --preset $(PRESET)
	$(PYTHON) -m bench.pca_bench
	OMP_NUM_THREADS=1 $(PYTHON) -m bench.nulls_bench

existing = $(foreach d,$(1),$(if $(wildcard $(d)/run.json),$(d)))

optional = $(if $(wildcard $(CONTROLS)),--controls $(CONTROLS)) $(if $(wildcard $(BETA2)),--beta2 $(BETA2))

figures:
	$(PYTHON) make_paper_figures.py --runs $(call existing,$(RUNS)) $(optional) --out $(PAPER_DIR)/figures

report:
	$(PYTHON) make_report.py --runs $(call existing,$(RUNS)) $(optional) --out $(PAPER_DIR)/generated

pdf: figures report
	@$(PYTHON) -m drift.bootstrap tex --no-install
	mkdir -p $(PAPER_DIR)/build
	latexmk $(TEX_OPTS) $(PAPER_DIR)/paper_backbone.tex >$(PAPER_DIR)/build/latexmk.log 2>&1 || { tail -40 $(PAPER_DIR)/build/latexmk.log >&2; echo "make pdf: LaTeX failed; full log in $(PAPER_DIR)/build/latexmk.log" >&2; exit 1; }
	cp $(PAPER_DIR)/build/paper_backbone.pdf $(PAPER_DIR)/paper_backbone.pdf
	@echo "wrote $(PAPER_DIR)/paper_backbone.pdf"

# The PDF toolchain is checked (and on Debian as root installed) first, so a missing TeX stops the demo in seconds,
# not after half an hour of training.
demo:
	@$(PYTHON) -m drift.bootstrap tex
	@$(PYTHON) -m drift.bootstrap python
	./run_seed.sh 42 --preset cpu
	$(MAKE) pdf PRESET=cpu SEEDS=42

controls:
	$(PYTHON) sgd_control.py --preset $(PRESET) --seed 42 --out $(CONTROLS)
	$(PYTHON) sgd_nesterov_run.py --preset $(PRESET) --seed 42 --out $(CONTROLS)
	$(PYTHON) sgd_control_analysis.py $(CONTROLS)
	$(PYTHON) sgd_matched_valloss.py $(CONTROLS)
	$(PYTHON) trajectory_nulls.py $(CONTROLS) --controls
	$(PYTHON) beta2_sweep.py --preset $(PRESET) --seed 42 --out $(BETA2)
	$(PYTHON) beta2_sweep.py --preset $(PRESET) --seed 42 --out $(BETA2) --beta2 0.95 0.0 --p-probe 0.20

reproduce:
	@$(PYTHON) -m drift.bootstrap tex
	for s in $(SEEDS); do ./run_seed.sh $$s --preset $(PRESET) || exit 1; done
	$(MAKE) controls PRESET=$(PRESET)
	$(MAKE) pdf PRESET=$(PRESET) SEEDS="$(SEEDS)"

# CI: the whole pipeline at the tiny scale, through the PDF (a few minutes on 2 cores).
ci-e2e:
	rm -rf runs/ci_tiny runs/ci_ctrl runs/ci_beta2
	./run_seed.sh 1 --preset tiny --out runs/ci_tiny
	$(MAKE) controls PRESET=tiny CONTROLS=runs/ci_ctrl BETA2=runs/ci_beta2
	$(MAKE) pdf RUNS=runs/ci_tiny CONTROLS=runs/ci_ctrl BETA2=runs/ci_beta2

clean:
	rm -rf $(PAPER_DIR)/build .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
