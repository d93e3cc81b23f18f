#!/usr/bin/env bash
# The per-seed pipeline: train, every analysis, reheating, figures. Each stage leaves a stamp in <run>/.stages/
# listing its outputs with their digests; a rerun skips a stage while its outputs match its stamp, redoes it (saying
# why) when one is missing or changed or an input stage was redone, and resumes a killed training run.
#
#   ./run_seed.sh 42                          # cpu preset -> runs/cpu_s42
#   ./run_seed.sh 42 --preset paper           # the paper's pipeline on a GPU -> runs/paper_s42
#   ./run_seed.sh 271 --preset cpu --out runs/my_s271
#   ./run_seed.sh 1 --preset tiny --skip reheat
#   ./run_seed.sh 42 --only trajectory,updates   # just these stages (make reproduce -j runs it stage by stage)
#
# A new seed's config must differ from the reference seed's (42, same preset, same parent directory) only in the seed.
set -euo pipefail

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
[[ $# -ge 1 ]] || usage 2
[[ "$1" == "-h" || "$1" == "--help" ]] && usage 0
SEED="$1"; shift
[[ "$SEED" =~ ^[0-9]+$ ]] || { echo "run_seed.sh: error: seed must be a non-negative integer, got '$SEED'" >&2; exit 2; }
PRESET=cpu; OUT=""; SKIP=""; ONLY=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --preset) PRESET="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --skip) SKIP="$SKIP $2"; shift 2 ;;
    --only) ONLY="$ONLY ${2//,/ }"; shift 2 ;;
    -h|--help) usage 0 ;;
    *) echo "run_seed.sh: error: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
STAGES=" env train check trajectory nulls updates gradients horizon fisher reheat figures "
for s in $ONLY $SKIP; do
  [[ "$STAGES" == *" $s "* ]] || { echo "run_seed.sh: error: unknown stage '$s'; stages are:$STAGES" >&2; exit 2; }
done
RUN="${OUT:-runs/${PRESET}_s${SEED}}"
PY="${PYTHON:-python3}"
cd "$(dirname "$0")"
mkdir -p "$RUN/.stages"

# INT/TERM are forwarded to the running stage, so stopping this script never leaves a trainer writing $RUN.
# (A kill -9 of this script cannot be forwarded; the trainer's run lock then refuses a second trainer.)
CHILD=""
on_signal() {
  local sig="$1"
  if [[ -n "$CHILD" ]]; then kill -TERM "$CHILD" 2>/dev/null || true; wait "$CHILD" 2>/dev/null || true; fi
  echo "run_seed.sh: stopped by SIG$sig; rerun to continue" >&2
  exit $((128 + $(kill -l "$sig")))
}
trap 'on_signal INT' INT
trap 'on_signal TERM' TERM

stage() {  # stage NAME COMMAND...: run unless its stamp agrees with its outputs, then stamp; on failure stop
  local name="$1" stamp="$RUN/.stages/$1.done" note rc=0; shift
  if [[ " $SKIP " == *" $name "* ]]; then echo "== [$name] skipped (--skip)"; return; fi
  if [[ -n "$ONLY" && " $ONLY " != *" $name "* ]]; then return; fi
  # done only while the stamp lists the stage's outputs as they are (drift/run/stages.py declares them)
  note="$("$PY" -m drift.run.stages check "$stamp")" || rc=$?
  [[ $rc -le 1 ]] || { echo "run_seed.sh: error: cannot check stage '$name' of $RUN" >&2; exit 1; }
  [[ -n "$note" ]] && echo "== [$name] $note"
  if [[ $rc -eq 0 ]]; then echo "== [$name] already done"; return; fi
  echo "== [$name] $*"
  local started=$SECONDS
  "$@" &  # in the background, so that a signal reaches the trap while the stage runs
  CHILD=$!
  if ! wait "$CHILD"; then
    CHILD=""; echo "run_seed.sh: error: stage '$name' failed for $RUN; fix it and rerun to continue" >&2; exit 1
  fi
  CHILD=""
  "$PY" -m drift.run.stages write "$stamp" --seconds $((SECONDS - started)) || exit 1
}

check_reference() {  # the new seed's config must equal the reference seed's but for the seed
  local ref; ref="$(dirname "$RUN")/${PRESET}_s42"
  [[ "$SEED" == 42 || ! -f "$ref/run.json" ]] && return 0
  exec "$PY" -m drift.run.info same-but-seed "$ref" "$RUN"
}

env_snapshot() {
  { echo "date: $(date -u +%FT%TZ)"; echo "host: $(hostname)"; "$PY" --version
    git rev-parse HEAD 2>/dev/null || true; "$PY" -m pip freeze 2>/dev/null; } > "$RUN/environment.txt"
}

train() {  # exec: the stage's process is the trainer itself, so the forwarded signal reaches it
  if [[ -f "$RUN/run.json" ]]; then exec "$PY" train.py --resume "$RUN"
  else exec "$PY" train.py --preset "$PRESET" --seed "$SEED" --out "$RUN"; fi
}

stage env env_snapshot
stage train train
stage check check_reference
stage trajectory "$PY" trajectory_pca_uncentered.py "$RUN"
stage nulls "$PY" trajectory_nulls.py "$RUN"
stage updates "$PY" backbone_update_analysis.py "$RUN"
stage gradients "$PY" backbone_gradient_analysis.py "$RUN"
stage horizon "$PY" backbone_gradient_analysis.py "$RUN" --equal-horizon
stage fisher "$PY" backbone_fisher_analysis.py "$RUN"
stage reheat "$PY" reheat.py "$RUN"
stage figures "$PY" make_paper_figures.py --runs "$RUN" --out "$RUN/figures/paper"
echo "== $RUN: all stages done"
