"""Parallel experiments: the slot wrapper of `make -j` (drift/jobs.py), the analysis-JSON comparison the CI uses
to check that `make -j 2` and `make -j 1` computed the same numbers, the per-run make targets and their order,
and the Slurm scripts' target selection. (The -j 2 vs -j 1 build itself runs in CI: `make ci-e2e`.)"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from drift import jobs

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def _slot_cmd(lock_dir, *opts, code="import os; print(os.environ.get('CUDA_VISIBLE_DEVICES'), "
                                     "os.environ.get('OMP_NUM_THREADS'), os.environ['DRIFT_SLOT'])"):
    cmd = [sys.executable, "-m", "drift.jobs", "slot", "--lock-dir", str(lock_dir), *opts, "--", sys.executable,
           "-c", code]
    return subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=60)


def test_slot_gives_a_free_gpu(tmp_path):
    slot, held = jobs.acquire_slot(tmp_path, 2)  # this process holds slot 0 (GPU 3)
    try:
        assert slot == 0
        done = _slot_cmd(tmp_path, "--gpus", "3,5")
        assert done.returncode == 0, done.stderr
        gpu, _, slot_seen = done.stdout.splitlines()[-1].split()
        assert (gpu, slot_seen) == ("5", "1")
    finally:
        held.close()
    done = _slot_cmd(tmp_path, "--gpus", "3,5")  # released: the first slot again
    assert done.stdout.splitlines()[-1].split()[::2] == ["3", "0"]


def test_slot_thread_budget_and_exit_code(tmp_path):
    done = _slot_cmd(tmp_path, "--threads", "1")
    assert done.returncode == 0 and done.stdout.splitlines()[-1].split()[1] == "1"
    log = tmp_path / "logs" / "job.log"
    failed = _slot_cmd(tmp_path, "--threads", "1", "--log", str(log), code="print('partial'); raise SystemExit(7)")
    assert failed.returncode == 7
    assert "partial" in log.read_text() and "partial" in failed.stderr and str(log) in failed.stderr


def test_slot_envs_are_disjoint():
    envs = [jobs.slot_env(i, ["0", "1", "2"], None, {})[0]["CUDA_VISIBLE_DEVICES"] for i in range(3)]
    assert envs == ["0", "1", "2"]
    cores = sorted(os.sched_getaffinity(0))
    env, block = jobs.slot_env(0, None, 1, {})
    assert env["OMP_NUM_THREADS"] == "1" and block == cores[:1]
    assert jobs.slot_env(len(cores), None, 1, {})[1] is None  # more slots than cores: no pinning


def _write(root: Path, rel: str, obj) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def test_compare_ignores_timing_and_root_but_not_numbers(tmp_path):
    a, b = tmp_path / "j1", tmp_path / "j2"
    rec = {"analysis": "x", "created": "2026-01-01T00:00:00", "run_dir": str(a / "cpu_s1"),
           "results": {"pc1": 0.731, "rows": [{"wall_s": 3.0, "seconds_gradients": 7.3, "peak": 0.25, "note": None}]}}
    _write(a, "cpu_s1/analysis/x.json", rec)
    other = json.loads(json.dumps(rec).replace(str(a), str(b)))
    other["created"], other["results"]["rows"][0]["wall_s"] = "2026-02-02T00:00:00", 9.0
    other["results"]["rows"][0]["seconds_gradients"] = 12.4
    _write(b, "cpu_s1/analysis/x.json", other)
    files, diffs = jobs.compare_roots(a, b)
    assert files == ["cpu_s1/analysis/x.json"] and diffs == []
    other["results"]["rows"][0]["peak"] = 0.25000000001
    _write(b, "cpu_s1/analysis/x.json", other)
    _write(b, "cpu_s1/analysis/y.json", {})
    files, diffs = jobs.compare_roots(a, b)
    assert any("rows[0]/peak" in d for d in diffs) and any("y.json: only under" in d for d in diffs)
    assert jobs.main(["compare", str(a), str(b)]) == 1
    assert jobs.main(["compare", str(a), str(tmp_path / "missing")]) == 2


def _make(*args):
    done = subprocess.run(["make", "-s", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_reproduce_targets_one_job_per_run_in_order(tmp_path):
    root = str(tmp_path / "r")
    train = _make("print-train-targets", "PRESET=paper", f"ROOT={root}")
    reheat = _make("print-reheat-targets", "PRESET=paper", f"ROOT={root}")
    assert len(train) == 2 + 5 + 7 == len(set(train)) and len(reheat) == 2 * 3  # controls A, B, B0, C, C'
    # on cpu: the regime issue's five main seeds, controls in three seeds, the beta2 sweep in two (five values each:
    # the pair at p_probe 0.20 is the sweep's own there)
    cpu = _make("print-train-targets", "PRESET=cpu", f"ROOT={root}")
    assert len(cpu) == 5 + 3 * 5 + 2 * 5 == len(set(cpu))
    assert {t.split("/")[-3] for t in cpu} == {"cpu_s42", "cpu_s271", "cpu_s137", "cpu_s314", "cpu_s1729", "ctrl_s42",
                                              "ctrl_s271", "ctrl_s137", "beta2_s42", "beta2_s271"}
    plan = _make("-n", "analyses", "PRESET=tiny", "SEEDS=1", f"ROOT={root}", "GPUS=0,1")
    jobs_run = [line for line in plan if "drift.jobs slot" in line or "drift.run.stages slot" in line]
    # a seed: train, analyses, 3 reheat runs, reheat table, figures; controls: 5 runs + tables; beta2: 7 runs + table
    assert len(jobs_run) == 7 + 6 + 8 and all("--gpus 0,1" in line for line in jobs_run)
    # the stages run_seed.sh does not run stamp themselves, with their wall time, through `stages slot`
    stamped = [line for line in jobs_run if "drift.run.stages slot" in line]
    assert len(stamped) == 3 + 6 + 8 and all(line.split("--stamp ")[1].split()[0].endswith(".done") for line in stamped)
    first = lambda text: next(i for i, line in enumerate(plan) if text in line)  # noqa: E731
    assert (first("--only env,train,check") < first("--only trajectory") < first("--only reheat")
            < first("--only figures"))
    assert first("--only env,train,check") < first("reheat.py") < first("--only reheat")
    assert max(first(f"--runs {r}") for r in ("A", "B", "B0", "C")) < first("sgd_control_analysis.py")
    assert first("--beta2 0.0 --p-probe 0.20") < first("--analyze-only")
    assert "trajectory_nulls.py" in plan[first("--analyze-only")] and "--beta2" in plan[first("--analyze-only")]
    assert sum("--train-only" in line for line in plan) == 3 + 7  # reheat runs, beta2 runs: one job each
    # the five-value sweep runs at the preset's own p_probe (named b<beta2>), the pair again at 0.20
    sweep = [line for line in plan if "beta2_sweep.py" in line and "--train-only" in line]
    assert sum("--p-probe" not in line for line in sweep) == 5
    assert sorted(line.split("--beta2 ")[1].split()[0] for line in sweep if "--p-probe 0.20" in line) == ["0.0", "0.95"]


def test_slurm_task_picks_its_line(tmp_path):
    targets = tmp_path / "targets.txt"
    root = tmp_path / "runs"  # not the checkout's runs/, where a finished control would leave make nothing to do
    targets.write_text(f"{root}/paper_s42/.stages/check.done\n{root}/ctrl_s42/.stages/B.done\n")
    env = {**os.environ, "SLURM_ARRAY_TASK_ID": "1", "MAKE_FLAGS": "-n", "PRESET": "paper", "ROOT": str(root)}
    done = subprocess.run([str(ROOT / "slurm" / "task.sbatch"), str(targets)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert f"sgd_control.py --preset paper --seed 42 --out {root}/ctrl_s42 --runs B" in done.stdout
    env["SLURM_ARRAY_TASK_ID"] = "5"
    done = subprocess.run([str(ROOT / "slurm" / "task.sbatch"), str(targets)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "no line 6" in done.stderr


@pytest.mark.parametrize("script", ["slurm/submit.sh", "run_seed.sh"])
def test_shell_scripts_have_help(script):
    done = subprocess.run([str(ROOT / script), "--help"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and Path(script).name in done.stdout
