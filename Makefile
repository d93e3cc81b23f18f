# Entry points; `make help` lists them. PRESET picks the scale (cpu: offline, 2 cores; paper: GPU, TinyStories).
PYTHON ?= python3
PRESET ?= cpu
# Main-run seeds; on cpu the regime issue's five, fixed before any of them ran (drift/studies/probe_study.py).
SEEDS ?= $(if $(filter cpu,$(PRESET)),42 271 137 314 1729,42 271)
# Seeds of the optimizer controls (A, B, B0, C, C') and of the beta2 sweep; the report reads CONTROLS and BETA2.
CONTROL_SEEDS ?= $(if $(filter cpu,$(PRESET)),42 271 137,42)
BETA2_SEEDS ?= $(if $(filter cpu,$(PRESET)),42 271,42)
# Where the runs go (the CI builds two roots and compares them).
ROOT ?= runs
# Main runs the figures and the report are made from (those that exist).
RUNS ?= $(foreach s,$(SEEDS),$(ROOT)/$(PRESET)_s$(s))
# Control sets and beta2 sweeps the report judges their claims in (one per seed; those that exist).
CONTROLS ?= $(foreach s,$(CONTROL_SEEDS),$(ROOT)/ctrl_s$(s))
BETA2 ?= $(foreach s,$(BETA2_SEEDS),$(ROOT)/beta2_s$(s))
PAPER_DIR := paper
TEX_OPTS := -pdf -interaction=nonstopmode -halt-on-error -outdir=$(PAPER_DIR)/build

.PHONY: help install tex tokenizer test test-slow bench figures report pdf demo reproduce analyses controls ci-e2e clean \
	print-train-targets print-reheat-targets print-control-seeds print-beta2-seeds FORCE

help:
	@echo "make demo        fresh machine: TeX check/install, requirements, seed 42 on the cpu preset, figures, PDF"
	@echo "make test        requirements if missing, then the fast test suite (python -m pytest -q)"
	@echo "make tokenizer   fetch and hash-check GPT-2's BPE ranks for tokenizer=gpt2 (offline afterwards)"
	@echo "make reproduce   every experiment on PRESET (=$(PRESET)): seeds $(SEEDS), controls, beta2 sweep, reheating, PDF"
	@echo "                 in parallel: make reproduce -j 8 GPUS=0,1,2,3,4,5,6,7   or   -j 4 JOB_THREADS=2 (CPU)"
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
	$(PYTHON) -m bench.train_levers --preset $(PRESET)
	$(PYTHON) -m bench.pca_bench
	OMP_NUM_THREADS=1 $(PYTHON) -m bench.nulls_bench

existing = $(foreach d,$(1),$(if $(wildcard $(d)/run.json),$(d)))

optional = $(if $(wildcard $(CONTROLS)),--controls $(wildcard $(CONTROLS))) \
	$(if $(wildcard $(BETA2)),--beta2 $(wildcard $(BETA2)))

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
	./run_seed.sh 42 --preset $(PRESET)
	$(MAKE) pdf PRESET=$(PRESET) SEEDS=42

# ---- every experiment as its own make target, so `make -j N` runs independent ones side by side ---------------
# One stamp per run or stage, in <run>/.stages/ (run_seed.sh's stamps). Order: training -> analyses of that run ->
# tables over runs -> figures and the report. Each job takes a slot (drift/jobs.py): with GPUS=0,1,.. one GPU each
# (CUDA_VISIBLE_DEVICES); with JOB_THREADS=T, T threads and its own block of T cores; with neither, no pinning
# (Slurm pins jobs itself). A job's output goes to the log next to its stamp (shown when it fails); the stamp
# records the job's wall time (drift.run.stages slot, or run_seed.sh for a main run's stages).
# A stamp lists its stage's outputs with their digests (drift/run/stages.py declares every stage's outputs and
# inputs): a target whose stamp no longer agrees with them (an output deleted or changed, an input stage redone) is
# redone, with a line saying why, however new the stamp file is.
GPUS ?=
JOB_THREADS ?=
SLOT_OPTS = --lock-dir $(ROOT)/.slots $(if $(GPUS),--gpus $(GPUS)) $(if $(JOB_THREADS),--threads $(JOB_THREADS))
SLOT = $(PYTHON) -m drift.jobs slot $(SLOT_OPTS)
CONTROL_RUNS := A B B0 C C_prime
# run_seed.sh's stages behind a main run's check.done and fisher.done targets (the others are one stage each)
STAGES_check := env train check
STAGES_fisher := trajectory nulls updates gradients horizon fisher
STAMPS = $(PYTHON) -m drift.run.stages
# the same slot, for a stage make runs without run_seed.sh: its stamp is written, with the command's wall time,
# when the command succeeds
STAGE_SLOT = $(STAMPS) slot $(SLOT_OPTS)
comma := ,
space := $(subst ,, )
only = --only $(subst $(space),$(comma),$(strip $(1)))
# PROTOCOL E3: five beta2 at the main run's p_probe (a controlled comparison with run A; 0.10 on the paper preset, 0.20
# on cpu, 0.40 on cpu_p40), and 0.95 / 0.0 again at 0.20 (the p_probe the paper's sweep most likely used) where the
# main run's p_probe is not already 0.20 (on cpu those two runs are the five-value sweep's own).
BETA2_VALUES ?= 0.99 0.95 0.9 0.8 0.0
BETA2_P20 ?= $(if $(filter cpu,$(PRESET)),,0.95 0.0)
REHEAT_LRS := 1e-3 6e-4 3e-4
# reheat.py's defaults: the per-seed reheat table (run_seed.sh stage "reheat") covers exactly these
MAIN_DIRS = $(foreach s,$(SEEDS),$(ROOT)/$(PRESET)_s$(s))
CTRL_DIRS = $(foreach s,$(CONTROL_SEEDS),$(ROOT)/ctrl_s$(s))
BETA2_DIRS = $(foreach s,$(BETA2_SEEDS),$(ROOT)/beta2_s$(s))
STAMP_TRAIN = $(foreach d,$(MAIN_DIRS),$(d)/.stages/check.done) \
	$(foreach d,$(CTRL_DIRS),$(foreach r,$(CONTROL_RUNS),$(d)/.stages/$(r).done)) \
	$(foreach d,$(BETA2_DIRS),$(foreach b,$(BETA2_VALUES),$(d)/.stages/b$(b).done) \
		$(foreach b,$(BETA2_P20),$(d)/.stages/b$(b)_p0.20.done))
STAMP_REHEAT = $(foreach d,$(MAIN_DIRS),$(foreach lr,$(REHEAT_LRS),$(d)/.stages/reheat_lr$(lr).done))
STAMP_FINAL = $(foreach d,$(MAIN_DIRS),$(d)/.stages/figures.done) $(foreach d,$(CTRL_DIRS),$(d)/.stages/analysis.done) \
	$(foreach d,$(BETA2_DIRS),$(d)/.stages/table.done)

# run_seed.sh writes a stamp when it runs a stage, and only then; the touch tells make that the target was brought
# up to date even when every stage was already done, so the targets after it are checked in turn.
define MAIN_RUN  # $(1) = seed: training, analyses, reheating runs, reheat table, figures of one main run
$(ROOT)/$(PRESET)_s$(1)/.stages/check.done:
	$$(SLOT) --log $$(@D)/train.log -- ./run_seed.sh $(1) --preset $(PRESET) --out $$(@D:/.stages=) $(call only,$(STAGES_check))
	touch $$@
$(ROOT)/$(PRESET)_s$(1)/.stages/fisher.done: $(ROOT)/$(PRESET)_s$(1)/.stages/check.done
	$$(SLOT) --log $$(@D)/analyses.log -- ./run_seed.sh $(1) --preset $(PRESET) --out $$(@D:/.stages=) \
		$(call only,$(STAGES_fisher))
	touch $$@
$(ROOT)/$(PRESET)_s$(1)/.stages/reheat.done: $(ROOT)/$(PRESET)_s$(1)/.stages/fisher.done \
		$(foreach lr,$(REHEAT_LRS),$(ROOT)/$(PRESET)_s$(1)/.stages/reheat_lr$(lr).done)
	$$(SLOT) --log $$(@D)/reheat.log -- ./run_seed.sh $(1) --preset $(PRESET) --out $$(@D:/.stages=) --only reheat
	touch $$@
$(ROOT)/$(PRESET)_s$(1)/.stages/figures.done: $(ROOT)/$(PRESET)_s$(1)/.stages/reheat.done
	$$(SLOT) --log $$(@D)/figures.log -- ./run_seed.sh $(1) --preset $(PRESET) --out $$(@D:/.stages=) --only figures
	touch $$@
endef
define REHEAT_RUN  # $(1) = seed, $(2) = peak lr
$(ROOT)/$(PRESET)_s$(1)/.stages/reheat_lr$(2).done: $(ROOT)/$(PRESET)_s$(1)/.stages/check.done
	$$(STAGE_SLOT) --stamp $$@ --log $$(@D)/reheat_lr$(2).log -- $(PYTHON) reheat.py $(ROOT)/$(PRESET)_s$(1) --lrs $(2) --train-only --no-progress
endef
# The sweep's run at run A's beta2 trains exactly run A's config: --reuse copies the same seed's finished control A
# instead of training it again (the controls come first in STAMP_TRAIN; under -j, or without that control set, the
# run trains as usual).
define BETA2_RUN  # $(1) = seed, $(2) = beta2, $(3) = stamp suffix (= the run's name suffix), $(4) = extra arguments
$(ROOT)/beta2_s$(1)/.stages/b$(2)$(3).done:
	$$(STAGE_SLOT) --stamp $$@ --log $$(@D)/b$(2)$(3).log -- $(PYTHON) beta2_sweep.py --preset $(PRESET) --seed $(1) \
		--out $(ROOT)/beta2_s$(1) --beta2 $(2) $(4) --reuse $(ROOT)/ctrl_s$(1)/A --train-only --no-progress
endef
define BETA2_SET  # $(1) = seed: the sweep's runs, then its table and nulls
$(foreach b,$(BETA2_VALUES),$(eval $(call BETA2_RUN,$(1),$(b),,)))
$(foreach b,$(BETA2_P20),$(eval $(call BETA2_RUN,$(1),$(b),_p0.20,--p-probe 0.20)))
$(ROOT)/beta2_s$(1)/.stages/table.done: $(foreach b,$(BETA2_VALUES),$(ROOT)/beta2_s$(1)/.stages/b$(b).done) \
		$(foreach b,$(BETA2_P20),$(ROOT)/beta2_s$(1)/.stages/b$(b)_p0.20.done)
	$$(STAGE_SLOT) --stamp $$@ --log $$(@D)/table.log -- sh -c '$(PYTHON) beta2_sweep.py --seed $(1) --out $(ROOT)/beta2_s$(1) \
		--analyze-only && $(PYTHON) trajectory_nulls.py $(ROOT)/beta2_s$(1) --beta2'
endef
define CONTROL_SET  # $(1) = seed: A, B, B0, C with sgd_control.py, C' with its own script, then the analyses
$(ROOT)/ctrl_s$(1)/.stages/C_prime.done:
	$$(STAGE_SLOT) --stamp $$@ --log $$(@D)/C_prime.log -- $(PYTHON) sgd_nesterov_run.py --preset $(PRESET) --seed $(1) \
		--out $(ROOT)/ctrl_s$(1) --no-progress
$(ROOT)/ctrl_s$(1)/.stages/%.done:
	$$(STAGE_SLOT) --stamp $$@ --log $$(@D)/$$*.log -- $(PYTHON) sgd_control.py --preset $(PRESET) --seed $(1) --out $(ROOT)/ctrl_s$(1) \
		--runs $$* --no-progress
$(ROOT)/ctrl_s$(1)/.stages/analysis.done: $(foreach r,$(CONTROL_RUNS),$(ROOT)/ctrl_s$(1)/.stages/$(r).done)
	$$(STAGE_SLOT) --stamp $$@ --log $$(@D)/analysis.log -- sh -c '$(PYTHON) sgd_control_analysis.py $(ROOT)/ctrl_s$(1) && \
		$(PYTHON) sgd_matched_valloss.py $(ROOT)/ctrl_s$(1) && $(PYTHON) trajectory_nulls.py $(ROOT)/ctrl_s$(1) --controls'
endef
$(foreach s,$(SEEDS),$(eval $(call MAIN_RUN,$(s))))
$(foreach s,$(SEEDS),$(foreach lr,$(REHEAT_LRS),$(eval $(call REHEAT_RUN,$(s),$(lr)))))
$(foreach s,$(BETA2_SEEDS),$(eval $(call BETA2_SET,$(s))))
$(foreach s,$(CONTROL_SEEDS),$(eval $(call CONTROL_SET,$(s))))

# Every stamp is also checked against its outputs when make looks at it (second expansion: only then, one Python
# start per stamp); a stamp that disagrees gets FORCE as a prerequisite, so its target is redone.
stage_stamps = $(foreach s,$(or $(STAGES_$(basename $(notdir $(1)))),$(basename $(notdir $(1)))),$(dir $(1))$(s).done)
stale = $(if $(wildcard $(1)),$(shell $(STAMPS) check $(call stage_stamps,$(1)) >&2 || echo FORCE))
ALL_STAMPS = $(STAMP_TRAIN) $(STAMP_REHEAT) $(STAMP_FINAL) \
	$(foreach d,$(MAIN_DIRS),$(d)/.stages/fisher.done $(d)/.stages/reheat.done)
.SECONDEXPANSION:
$(ALL_STAMPS): $$(call stale,$$@)
FORCE:

controls: $(foreach d,$(CTRL_DIRS),$(d)/.stages/analysis.done) $(foreach d,$(BETA2_DIRS),$(d)/.stages/table.done)

# Every run and analysis (no PDF): what `make reproduce` builds before the report.
analyses: $(STAMP_FINAL)

reproduce:
	@$(PYTHON) -m drift.bootstrap tex
	$(MAKE) analyses
	$(MAKE) pdf PRESET=$(PRESET) SEEDS="$(SEEDS)" RUNS="$(MAIN_DIRS)" CONTROLS="$(CONTROLS)" BETA2="$(BETA2)"

# For experiments/regime.sh, which runs and exports one control set or sweep at a time.
print-control-seeds:
	@echo $(CONTROL_SEEDS)
print-beta2-seeds:
	@echo $(BETA2_SEEDS)

# For slurm/submit.sh: the runs that need nothing else, then the reheating runs (each needs its main run).
print-train-targets:
	@printf '%s\n' $(STAMP_TRAIN)
print-reheat-targets:
	@printf '%s\n' $(STAMP_REHEAT)

# CI: the whole tiny set twice, with 2 jobs and with 1, then the same numbers in every analysis JSON, then the PDF
# (about 25 min on 2 shared cores; each build alone about 10).
ci-e2e:
	rm -rf runs/ci_j1 runs/ci_j2
	$(MAKE) -j 2 analyses PRESET=tiny SEEDS=1 ROOT=runs/ci_j2 JOB_THREADS=1
	$(MAKE) -j 1 analyses PRESET=tiny SEEDS=1 ROOT=runs/ci_j1 JOB_THREADS=1
	$(PYTHON) -m drift.jobs compare runs/ci_j1 runs/ci_j2
	$(MAKE) pdf PRESET=tiny SEEDS=1 ROOT=runs/ci_j2

clean:
	rm -rf $(PAPER_DIR)/build .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
