#!/usr/bin/env bash
# The paper's full set on a Slurm cluster: one array task per run, then the analyses and the report.
#
#   slurm/submit.sh                                  # PRESET=paper, seeds 42 271, 1 GPU per task
#   slurm/submit.sh --preset cpu --sbatch "--partition=cpu --cpus-per-task=2 --gres=none"
#   slurm/submit.sh --dry-run                        # print the target lists and the sbatch commands only
#
# Three submissions chained with --dependency=afterok: (1) an array over the runs that need nothing else (main
# seeds, controls A/B/C/C', the beta2 sweep), (2) an array over the reheating runs (each starts from its main run),
# (3) one job running `make reproduce` on a single GPU, which finds every run stamped and does the analyses, the
# tables and the PDF. Every task runs `make <its stamp>` through slurm/task.sbatch, so a resubmission skips what is
# done and resumes killed runs. Run it from the repository root on a shared filesystem.
set -euo pipefail
usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
PRESET=paper; SEEDS="42 271"; EXTRA=""; DRY=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --preset) PRESET="$2"; shift 2 ;;
    --seeds) SEEDS="$2"; shift 2 ;;
    --sbatch) EXTRA="$2"; shift 2 ;;
    --dry-run) DRY=1; shift ;;
    -h|--help) usage 0 ;;
    *) echo "submit.sh: error: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/.."
mkdir -p runs/slurm
VARS=(PRESET="$PRESET" SEEDS="$SEEDS")
make -s print-train-targets "${VARS[@]}" > runs/slurm/train_targets.txt
make -s print-reheat-targets "${VARS[@]}" > runs/slurm/reheat_targets.txt
n_train=$(wc -l < runs/slurm/train_targets.txt); n_reheat=$(wc -l < runs/slurm/reheat_targets.txt)

submit() {  # submit [sbatch options...] -> prints the job id
  if [[ $DRY == 1 ]]; then echo "sbatch $* $EXTRA" >&2; echo "DRY$RANDOM"; return; fi
  # shellcheck disable=SC2086
  sbatch --parsable $EXTRA "$@"
}
export PRESET SEEDS
j1=$(submit --job-name=drift-runs --array=0-$((n_train - 1)) slurm/task.sbatch runs/slurm/train_targets.txt)
j2=$(submit --job-name=drift-reheat --dependency=afterok:"$j1" --array=0-$((n_reheat - 1)) \
     slurm/task.sbatch runs/slurm/reheat_targets.txt)
j3=$(submit --job-name=drift-report --dependency=afterok:"$j2" slurm/task.sbatch reproduce)
echo "submitted: $n_train runs (job $j1), $n_reheat reheating runs (job $j2), analyses + report (job $j3)"
echo "target lists: runs/slurm/train_targets.txt runs/slurm/reheat_targets.txt; logs: runs/slurm/*.out and <run>/.stages/*.log"
