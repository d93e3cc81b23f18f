#!/usr/bin/env bash
# The regime issue's runs on the cpu preset, one heavy job at a time, resumable: per main seed the whole per-seed
# pipeline (train, analyses, nulls, reheating, figures), the fresh 1,024 / 4,096-example OOD rescoring that the
# probe study's phase criteria read, and an export of the result files to experiments/results/cpu_runs_p20/;
# then the optimizer controls (A, B, B0, C, C') and the beta2 sweep for their seeds, one set at a time, each
# exported as soon as its analysis is done; then the report (tables,
# claims, evidence) and its figures rebuilt from the exported results only. Rerunning skips what is done
# (run_seed.sh's and make's stage stamps); a killed training resumes from its last checkpoint.
#
#   experiments/regime.sh                    # everything, in order
#   experiments/regime.sh main 271 42        # the main pipeline of these seeds only
#   experiments/regime.sh controls           # controls and beta2 sweep (make controls PRESET=cpu)
#   experiments/regime.sh report             # paper/generated and paper/figures from experiments/results/cpu_runs_p20
#   ROOT=/scratch/runs experiments/regime.sh
#
# Seeds (fixed before any ran, drift/studies/probe_study.py PHASE_SEEDS): main 42 271 137 314 1729; controls 42 271
# 137; beta2 42 271 (Makefile CONTROL_SEEDS, BETA2_SEEDS).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="${ROOT:-runs}"
RESULTS="${RESULTS:-experiments/results/cpu_runs_p20}"
PY="${PYTHON:-python3}"
what="${1:-all}"; shift || true
seeds="${*:-42 271 137 314 1729}"
case "$what" in all|main|controls|report) ;; -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
  *) echo "regime.sh: error: first argument is all, main, controls or report, got '$what'" >&2; exit 2 ;; esac

if [[ "$what" == all || "$what" == main ]]; then
  for s in $seeds; do
    run="$ROOT/cpu_s$s"
    ./run_seed.sh "$s" --preset cpu --out "$run"
    [[ -f "experiments/results/eval_size_cpu_s$s.json" ]] || \
      "$PY" -m experiments.eval_size "$run" --sizes 1024 4096 --no-progress
    "$PY" -m drift.run.export "$run" --out "$RESULTS"
  done
fi
if [[ "$what" == all || "$what" == controls ]]; then
  # one set at a time, each exported as soon as its analysis is done: runs/ may not outlive the machine
  for s in $(make -s print-control-seeds PRESET=cpu); do
    make controls PRESET=cpu ROOT="$ROOT" CONTROL_SEEDS="$s" BETA2_SEEDS=
    "$PY" -m drift.run.export "$ROOT/ctrl_s$s" --out "$RESULTS"
  done
  for s in $(make -s print-beta2-seeds PRESET=cpu); do
    make controls PRESET=cpu ROOT="$ROOT" CONTROL_SEEDS= BETA2_SEEDS="$s"
    "$PY" -m drift.run.export "$ROOT/beta2_s$s" --out "$RESULTS"
  done
fi
if [[ "$what" != report ]]; then
  # directories only: a log file named like a run (cpu_s42.log) is not a run
  "$PY" -m experiments.probe_study --summarize --adopt "$ROOT"/cpu_s*/
fi
if [[ "$what" == all || "$what" == report ]]; then
  # from the exported JSON only, so anyone with a clone rebuilds the same report (tests/test_evidence.py checks it)
  shopt -s nullglob
  mains=("$RESULTS"/cpu_s*) ctrls=("$RESULTS"/ctrl_s*) sweeps=("$RESULTS"/beta2_s*)
  args=(--runs "${mains[@]}")
  (( ${#ctrls[@]} )) && args+=(--controls "${ctrls[@]}")
  (( ${#sweeps[@]} )) && args+=(--beta2 "${sweeps[@]}")
  "$PY" make_report.py "${args[@]}" --out paper/generated
  "$PY" make_paper_figures.py "${args[@]}" --out paper/figures
fi
echo "regime.sh: done; commit $RESULTS, experiments/results/ (eval_size_*, probe_study.*) and paper/"
