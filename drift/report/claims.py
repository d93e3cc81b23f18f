"""The paper's claims checklist (PROTOCOL section 6) as data, and the verdicts our runs give.

Each claim C1..C22 carries the paper's value, our reading of it from the analysis JSON, and a decision rule.
The rules were written down, with their thresholds, before any cpu- or paper-scale result existed; they test the
scale-free ("qualitative", [Q]) part of a claim. For claims that are only [S] (numbers specific to the paper's
scale), the rule tests the nearest scale-free statement and says so. A verdict is one of

    held          the rule is satisfied (in every seed, when there are several)
    not held      the rule fails in at least one seed (the text says which)
    not measured  an input is missing or too short; the text says which and how to produce it

Rules are pure functions of a few numbers (`rule_*`, in rules.py), unit-tested on crafted values; the readers (`read_*`)
only pull those numbers out of the JSON. Everything is read through `Evidence`, which loads the run
directories' analysis files once and never touches a checkpoint.

    ev = load_evidence(["runs/cpu_s42", "runs/cpu_s271"], controls="runs/ctrl_s42", beta2="runs/beta2_s42")
    for row in evaluate_claims(ev):
        print(row["id"], row["verdict"], row["ours"])
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from drift.run import checkpoint as ck
from drift.analysis.beta2 import compared_groups, p_probe_groups
from drift.run.info import RunInfo, load_run
from drift.report.rules import (THRESHOLDS, rule_c1, rule_c2, rule_c3, rule_c4, rule_c5, rule_c6, rule_c7, rule_c8,
                                rule_c9, rule_c10, rule_c11, rule_c12, rule_c13, rule_c15, rule_c16, rule_c17, rule_c20,
                                rule_c21, rule_c22, falls, finite, oscillation_drops)

HELD, NOT_HELD, NOT_MEASURED = "held", "not held", "not measured"

# Analysis files of a main run -> the script that writes them (named in every "not measured" / missing message).
RUN_ANALYSES = {
    "trajectory_pca": "trajectory_pca_uncentered.py",
    "update_alignment": "backbone_update_analysis.py",
    "gradient_alignment": "backbone_gradient_analysis.py",
    "fisher": "backbone_fisher_analysis.py",
    "reheat": "reheat.py",
    "nulls": "trajectory_nulls.py",
}
CONTROL_ANALYSES = {"sgd_control": "sgd_control_analysis.py", "sgd_matched_valloss": "sgd_matched_valloss.py",
                    "nulls": "trajectory_nulls.py --controls"}

# ---------------------------------------------------------------------------------------------------------------
# Evidence: the JSON of the runs, loaded once
# ---------------------------------------------------------------------------------------------------------------

@dataclass
class RunEvidence(RunInfo):
    """One main run (one seed): what RunInfo reads from the run directory, plus the `results` of each analysis
    file (None: absent)."""
    analyses: dict[str, dict | None] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"s{self.config.train.seed}"

    def results(self, name: str) -> dict | None:
        return self.analyses.get(name)

    def missing(self, name: str) -> str:
        return f"{self.run_dir}/analysis/{name}.json absent (run `python {RUN_ANALYSES[name]} {self.run_dir}`)"

    def series(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """(steps, values) of an eval metric, NaN where absent."""
        steps = np.array([r["step"] for r in self.metrics], dtype=np.float64)
        vals = np.array([np.nan if r.get(key) is None else float(r[key]) for r in self.metrics])
        return steps, vals


@dataclass
class Evidence:
    """Main runs (one per seed), and the optional control, beta2-sweep directories' analysis results."""
    runs: list[RunEvidence]
    controls_dir: Path | None = None
    beta2_dir: Path | None = None
    controls: dict[str, dict | None] = field(default_factory=dict)
    beta2: dict | None = None
    beta2_nulls: dict | None = None

    def control(self, name: str) -> dict | None:
        return self.controls.get(name)

    def missing_control(self, name: str) -> str:
        if self.controls_dir is None:
            return ("optimizer controls not given (train them with `python sgd_control.py --out runs/ctrl_s42` "
                    f"and `python sgd_nesterov_run.py --out runs/ctrl_s42`, then `python {CONTROL_ANALYSES[name]} "
                    "runs/ctrl_s42`)")
        where = self.controls_dir
        return f"{where}/analysis/{name}.json absent (run `python {CONTROL_ANALYSES[name]} {where}`)"

    def missing_beta2(self) -> str:
        if self.beta2_dir is None:
            return "beta2 sweep not given (run `python beta2_sweep.py --out runs/beta2_s42`)"
        where = self.beta2_dir
        return f"{where}/analysis/beta2_sweep.json absent (run `python beta2_sweep.py --out {where} --analyze-only`)"

    def missing_beta2_nulls(self) -> str:
        if self.beta2_dir is None:
            return self.missing_beta2()
        return f"{self.beta2_dir}/analysis/nulls.json absent (run `python trajectory_nulls.py {self.beta2_dir} --beta2`)"


def _results(path: Path) -> dict | None:
    if not path.exists():
        return None
    return ck.read_json(path, "analysis")["results"]


def load_run_evidence(run_dir) -> RunEvidence:
    run = load_run(run_dir, require_steps=0)
    ev = RunEvidence(**{f.name: getattr(run, f.name) for f in fields(RunInfo)})
    ev.analyses = {name: _results(ev.run_dir / "analysis" / f"{name}.json") for name in RUN_ANALYSES}
    return ev


DEFAULT_RUN_SETS = (("runs/paper_s42", "runs/paper_s271"), ("runs/cpu_s42", "runs/cpu_s271"))
DEFAULT_CONTROLS = ("runs/ctrl_s42",)
DEFAULT_BETA2 = ("runs/beta2_s42",)


def _same_model(sweep_dir: Path, main_run: Path) -> bool:
    """Whether the runs under a control/beta2 directory share the main run's model and data (so that a tiny main
    run is never reported next to cpu-scale controls)."""
    def key(run_json: Path) -> tuple:
        cfg = ck.read_json(run_json)["config"]
        return (cfg["model"], cfg["train"]["data_source"], cfg["train"]["tokenizer"])
    subs = sorted(sweep_dir.glob("*/run.json"))
    return bool(subs) and key(subs[0]) == key(main_run / "run.json")


def default_inputs(runs: Sequence | None = None, root=".") -> tuple[list[Path], Path | None, Path | None]:
    """(main runs, control dir, beta2 dir). Main runs: `runs` if given (even empty), else the paper-preset seeds
    under `root` if any exists, else the cpu-preset seeds. Control and beta2 directories: the default ones when
    they exist and hold runs of the same model and data as the first main run."""
    root = Path(root)
    chosen = [Path(r) for r in runs] if runs is not None else []
    for group in () if runs is not None else DEFAULT_RUN_SETS:
        chosen = [root / d for d in group if (root / d / "run.json").exists()]
        if chosen:
            break
    found = []
    for candidates in (DEFAULT_CONTROLS, DEFAULT_BETA2):
        dirs = [root / d for d in candidates if (root / d).is_dir()]
        found.append(next((d for d in dirs if chosen and (chosen[0] / "run.json").exists()
                           and _same_model(d, chosen[0])), None))
    return chosen, found[0], found[1]


def load_evidence(run_dirs: Sequence, controls=None, beta2=None) -> Evidence:
    """Load the main runs (sorted by seed) and, when their directories are given, the control and beta2 JSON."""
    runs = sorted((load_run_evidence(d) for d in run_dirs), key=lambda r: r.config.train.seed)
    ev = Evidence(runs, Path(controls) if controls else None, Path(beta2) if beta2 else None)
    if ev.controls_dir is not None:
        ev.controls = {n: _results(ev.controls_dir / "analysis" / f"{n}.json") for n in CONTROL_ANALYSES}
    if ev.beta2_dir is not None:
        ev.beta2 = _results(ev.beta2_dir / "analysis" / "beta2_sweep.json")
        ev.beta2_nulls = _results(ev.beta2_dir / "analysis" / "nulls.json")
    return ev


# ---------------------------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------------------------

def fmt(x, digits: int = 3) -> str:
    """Plain-text number: None/NaN -> 'n/a'; large or tiny magnitudes in scientific notation."""
    if not finite(x):
        return "n/a"
    if isinstance(x, int) or float(x).is_integer() and abs(x) < 1e6:
        return str(int(x))
    if x != 0 and (abs(x) >= 1e4 or abs(x) < 1e-2):
        return f"{x:.{max(digits - 1, 1)}e}"
    return f"{x:.{digits}g}" if abs(x) >= 1 else f"{x:.{digits}f}"


def pct(x, digits: int = 1) -> str:
    """A fraction as a percentage string."""
    return "n/a" if not finite(x) else f"{100 * x:.{digits}f}%"


@dataclass
class Outcome:
    verdict: str
    ours: str
    reason: str = ""


def not_measured(reason: str, ours: str = "n/a") -> Outcome:
    return Outcome(NOT_MEASURED, ours, reason)


def per_seed(ev: Evidence, name: str | None, check: Callable[[RunEvidence], tuple[bool | None, str]]) -> Outcome:
    """Apply `check(run) -> (held, our values | reason)` to every seed; held iff held in all. A seed whose input
    is missing (`name` absent) or where the check returns None makes the whole claim "not measured"."""
    if not ev.runs:
        return not_measured("no main run given")
    parts, verdicts = [], []
    for run in ev.runs:
        if name is not None and run.results(name) is None:
            return not_measured(run.missing(name))
        held, text = check(run)
        if held is None:
            return not_measured(f"{run.label}: {text}")
        verdicts.append(held)
        parts.append(f"{run.label}: {text}" if len(ev.runs) > 1 else text)
    ours = "; ".join(parts)
    if all(verdicts):
        return Outcome(HELD, ours)
    failed = [r.label for r, v in zip(ev.runs, verdicts) if not v]
    return Outcome(NOT_HELD, ours, f"fails in {', '.join(failed)}" if len(ev.runs) > 1 else "")


# ---------------------------------------------------------------------------------------------------------------
# Readers: Evidence -> Outcome (our numbers formatted, the rule applied)
# ---------------------------------------------------------------------------------------------------------------

def read_c1(ev: Evidence) -> Outcome:
    def check(run: RunEvidence):
        steps, p = run.series("p_ood")
        _, val = run.series("val_loss")
        if steps.size < 5:
            return None, f"{steps.size} evals; need >= 5"
        drops = oscillation_drops(p, run.config.train.n_probe_eval)
        i = int(np.nanargmax(p))
        text = (f"p_ood max {fmt(p[i])} @{int(steps[i])}, last {fmt(p[-1])}; {len(drops)} significant drop(s)"
                + (f" (largest {fmt(max(drops))})" if drops else "") + f"; val {fmt(val[0])} -> {fmt(val[-1])}")
        return rule_c1(p, run.config.train.n_probe_eval, steps, val), text
    return per_seed(ev, None, check)


def _traj(run: RunEvidence) -> dict:
    return run.results("trajectory_pca")


def _paper_window(windows: Sequence[dict], lo: int, hi: int) -> int | None:
    """Index of the window whose paper bounds are (lo, hi] (trajectory_pca.json records both)."""
    return next((i for i, w in enumerate(windows) if w["paper_lo"] == lo and w["paper_hi"] == hi), None)


def read_c2(ev: Evidence) -> Outcome:
    def check(run: RunEvidence):
        pc1 = _traj(run)["blocks"]["pc1"]
        text = ("trunk matrices " + " ".join(pct(x, 1) for x in pc1["block"]) + "; with LN "
                + " ".join(pct(x, 1) for x in pc1["block+ln"]))
        return rule_c2(pc1["block"]), text
    return per_seed(ev, "trajectory_pca", check)


def read_c3(ev: Evidence) -> Outcome:
    def check(run: RunEvidence):
        t = _traj(run)["trunk"]
        text = (f"row-norm PC1 {pct(t['pc1_rownorm_top10'])} (top-10) / {pct(t['pc1_rownorm_full'])} (full), "
                f"PC2 {pct(t['pc2_rownorm_full'])}, raw PC1 {pct(t['pc1_raw_full'])}")
        if not all(finite(t[k]) for k in ("pc1_rownorm_full", "pc2_rownorm_full", "pc1_raw_full")):
            return None, "trunk spectrum has fewer than 2 components"
        return rule_c3(t["pc1_rownorm_full"], t["pc2_rownorm_full"], t["pc1_raw_full"]), text
    return per_seed(ev, "trajectory_pca", check)


def read_c4(ev: Evidence) -> Outcome:
    def check(run: RunEvidence):
        r = _traj(run)
        means = [r["rolling"]["blocks"][f"block{l}"]["rho_mean"] for l in r["blocks"]["layers"]]
        if not all(finite(m) for m in means):
            return None, f"fewer than {r['rolling']['trunk']['window'] + 1} drift rows for two adjacent windows"
        return rule_c4(means), "mean adjacent |cos| per block " + " ".join(fmt(m, 4) for m in means)
    return per_seed(ev, "trajectory_pca", check)


def read_c5(ev: Evidence) -> Outcome:
    def check(run: RunEvidence):
        t, b = _traj(run)["trunk"], _traj(run)["blocks"]
        text = (f"trunk f_b final {fmt(t['f_b_final'])}, time-mean {fmt(t['f_b_mean'])}; per block (+LN) final "
                f"{fmt(min(b['f_b_final']['block+ln']))}-{fmt(max(b['f_b_final']['block+ln']))}")
        return rule_c5(t["f_b_final"]), text
    return per_seed(ev, "trajectory_pca", check)


def read_c6(ev: Evidence) -> Outcome:
    def check(run: RunEvidence):
        r = _traj(run)
        roll = r["rolling"]["trunk"]
        if not finite(roll["rho_argmin_step"]):
            return None, f"fewer than {roll['window'] + 1} checkpoints for two adjacent windows"
        text = (f"rho mean {fmt(roll['rho_mean'])}, max {fmt(roll['rho_max'])}, min {fmt(roll['rho_min'])} at "
                f"{fmt(roll['rho_argmin_step'])} (switch {r['setup']['switch_step']})")
        return rule_c6(roll["rho_argmin_step"], r["setup"]["switch_step"], r["setup"]["total_steps"]), text
    return per_seed(ev, "trajectory_pca", check)


def read_c7(ev: Evidence) -> Outcome:
    def check(run: RunEvidence):
        ph = _traj(run)["phases"]
        if "skipped" in ph:
            return None, ph["skipped"]
        if run.results("nulls") is None:
            return None, run.missing("nulls")
        n3 = (run.results("nulls")["statistics"].get("phase_abs_cos") or {}).get("N3") or {}
        text = (f"early PC1 {pct(ph['early_pc1_full'])}, late {pct(ph['late_pc1_full'])}, |<v_E,v_L>| "
                f"{fmt(ph['abs_cos'])} ({fmt(ph['angle_deg'])} deg; N3 band {fmt(n3.get('lo'))}-{fmt(n3.get('hi'))})")
        return rule_c7(ph["early_pc1_full"], ph["late_pc1_full"], ph["abs_cos"], n3.get("lo")), text
    return per_seed(ev, "trajectory_pca", check)


def read_c8(ev: Evidence) -> Outcome:
    def check(run: RunEvidence):
        r = _traj(run)
        ph = r["phases"]
        if "skipped" in ph or not ph.get("centers"):
            return None, ph.get("skipped", "no rolling windows (run too short for W = 10)")
        held = rule_c8(ph["centers"], ph["A_E"], ph["A_L"], r["setup"]["switch_step"], r["setup"]["total_steps"])
        if held is None:
            return None, "no window centre before the switch or within 0.2 T after it"
        e, l = np.asarray(ph["A_E"]), np.asarray(ph["A_L"])
        return held, f"A_E {fmt(e[0])} -> {fmt(e[-1])}, A_L {fmt(l[0])} -> max {fmt(l.max())} -> {fmt(l[-1])}"
    return per_seed(ev, "trajectory_pca", check)


C9_WINDOWS = ((0, 2000), (2000, 4000), (4000, 6000), (6000, 10000))


def read_c9(ev: Evidence) -> Outcome:
    def check(run: RunEvidence):
        pw = _traj(run)["power_laws"]
        idx = [_paper_window(pw["windows"], lo, hi) for lo, hi in C9_WINDOWS]
        if None in idx:
            return None, "power-law windows missing"
        fits = [pw["a"][i] for i in idx]
        if not all(finite(f["gamma"]) for f in fits):
            return None, "a power-law window has fewer than 3 checkpoints"
        text = ("gamma_a " + " / ".join(fmt(f["gamma"]) for f in fits) + f" (R2 first {fmt(fits[0]['r2'])}); "
                "gamma_r " + " / ".join(fmt(pw["r_norm"][i]["gamma"]) for i in idx))
        return rule_c9([f["gamma"] for f in fits], fits[0]["r2"]), text
    return per_seed(ev, "trajectory_pca", check)


def read_c10(ev: Evidence) -> Outcome:
    def check(run: RunEvidence):
        c = _traj(run)["correlations"]
        i, j = _paper_window(c["windows"], 0, 4000), _paper_window(c["windows"], 6000, 10000)
        if i is None or j is None:
            return None, "correlation windows missing"
        r = c["p_ood_vs_r_norm"]
        text = "r " + " / ".join(f"{fmt(x['r'])} (n={x['n']})" for x in r) + " on full, 0-0.4T, 0.4T-T, 0.6T-T"
        if not (finite(r[i]["r"]) and finite(r[j]["r"])):
            return None, f"correlation undefined (constant p_ood or < 3 points): {text}"
        return rule_c10(r[i]["r"], r[j]["r"]), text
    return per_seed(ev, "trajectory_pca", check)


def read_c21(ev: Evidence) -> Outcome:
    def check(run: RunEvidence):
        sw = _traj(run)["switching"]
        if not sw.get("first"):
            return None, "no p_ood peak -> trough pair (the run does not oscillate)"
        first = sw["first"]
        c2 = [first["by_scope"][f"block{l}"]["c2"] for l in _traj(run)["blocks"]["layers"]]
        summ = first["summary"]["block+ln"]
        dim = sw.get("dimension") or {}
        text = (f"pair {first['pair'][0]}->{first['pair'][1]}: c^2 per block " + " ".join(fmt(c) for c in c2)
                + f"; with LN c {fmt(summ['c_min'])}-{fmt(summ['c_max'])}, E_2:6 {fmt(summ['e_2_6_min'])}-"
                f"{fmt(summ['e_2_6_max'])}; {dim.get('effective_dim', 'n/a')} independent switch direction(s)")
        return rule_c21(c2), text
    return per_seed(ev, "trajectory_pca", check)


SEED_KEYS = ("trunk row-norm PC1", "trunk raw PC1", "mean block PC1", "mean rho")


def seed_headline(results: dict) -> list[float]:
    """The C22 headline fractions of one seed, in percent (NaN where not defined)."""
    t, b, roll = results["trunk"], results["blocks"], results["rolling"]["trunk"]
    vals = [t["pc1_rownorm_full"], t["pc1_raw_full"], float(np.mean(b["pc1"]["block"])), roll["rho_mean"]]
    return [100 * v if finite(v) else math.nan for v in vals]


def read_c22(ev: Evidence) -> Outcome:
    if len(ev.runs) < 2:
        return not_measured("needs at least two seeds")
    missing = [r.missing("trajectory_pca") for r in ev.runs if r.results("trajectory_pca") is None]
    if missing:
        return not_measured(missing[0])
    vals = {r.label: seed_headline(_traj(r)) for r in ev.runs}
    keep = [k for k in range(len(SEED_KEYS)) if all(finite(v[k]) for v in vals.values())]
    text = "; ".join(f"{SEED_KEYS[k]} " + " / ".join(f"{v[k]:.1f}" for v in vals.values()) for k in keep)
    held = rule_c22({label: [v[k] for k in keep] for label, v in vals.items()})
    return Outcome(HELD if held else NOT_HELD, text + " (%)")


def _update_scope(results: dict) -> tuple[str, dict] | None:
    """The block-0 entry compared with the paper: LN-inclusive when present (PROTOCOL 8.19), else trunk-only."""
    for scope in ("block0+ln", "block0"):
        if scope in results.get("scopes", {}):
            return scope, results["scopes"][scope]["raw"]["consecutive_summary"]
    return None


def read_c11(ev: Evidence) -> Outcome:
    def check(run: RunEvidence):
        found = _update_scope(run.results("update_alignment"))
        if found is None:
            return None, "update_alignment.json has no block0 scope"
        scope, s = found
        flip = s["flip_end_step"]
        text = (f"{scope}: |C| max {fmt(s['max_abs_cos'])} @{fmt(s['max_abs_cos_end_step'])}, flip at "
                f"{fmt(flip)}, mean |C| {fmt(s['mean_abs_cos_before_flip'])} before / "
                f"{fmt(s['mean_abs_cos_after_flip'])} after")
        return rule_c11(flip, run.switch_step, s["mean_abs_cos_before_flip"], s["mean_abs_cos_after_flip"]), text
    return per_seed(ev, "update_alignment", check)


def read_c12(ev: Evidence) -> Outcome:
    def check(run: RunEvidence):
        res = run.results("gradient_alignment")
        s, floor = res["summary"], res["floors"]["abs_cos_mean_asymptotic"]
        text = (f"{res['scope']}: |cos(u,v_b)| {fmt(s['update_mean_abs_cos'])}, |cos(g,v_b)| "
                f"{fmt(s['grad_mean_abs_cos'])} (floor {fmt(floor)}; ratio {fmt(s['update_over_grad'], 2)}x)")
        return rule_c12(s["update_mean_abs_cos"], s["grad_mean_abs_cos"], floor), text
    return per_seed(ev, "gradient_alignment", check)


def read_c13(ev: Evidence) -> Outcome:
    def check(run: RunEvidence):
        res = run.results("fisher")
        s = res["summary"]
        if len(s["steps"]) < 2:
            return None, "fewer than 2 Fisher checkpoints"
        text = (f"q_b {fmt(s['q_b'][0])} @{s['steps'][0]} -> {fmt(s['q_b'][-1])} @{s['steps'][-1]} "
                f"(x{fmt(s['q_b_last_over_first'])}); alpha max {fmt(s['alpha_max'])} @{s['alpha_max_step']}; "
                f"max |<u1,v_b>| {fmt(max(s['u1_overlap_v_b']))}")
        return rule_c13(s["q_b"], s["alpha"], s["steps"], res["switch_step"], s["u1_overlap_v_b"]), text
    return per_seed(ev, "fisher", check)


def beta2_groups(beta2: dict) -> dict[float, list[dict]]:
    """Sweep rows grouped by p_probe, each group ordered by decreasing beta2."""
    return p_probe_groups(beta2["rows"])


def _beta2_claim(ev: Evidence, check: Callable[[list[dict]], tuple[bool | None, str]]) -> Outcome:
    """Apply `check` to each p_probe group with >= 3 runs; held iff held in every such group."""
    if ev.beta2 is None:
        return not_measured(ev.missing_beta2())
    groups = compared_groups(ev.beta2["rows"])
    if not groups:
        return not_measured("the beta2 sweep has fewer than 3 runs at any p_probe")
    parts, verdicts = [], []
    for p, rows in groups.items():
        held, text = check(rows)
        if held is None:
            return not_measured(f"p_probe {p:g}: {text}")
        verdicts.append(held)
        parts.append(f"p_probe {p:g}: {text}")
    failed = [f"p_probe {p:g}" for p, v in zip(groups, verdicts) if not v]
    reason = f"fails at {', '.join(failed)}" if failed else ""
    return Outcome(HELD if all(verdicts) else NOT_HELD, "; ".join(parts), reason)


def _series_text(rows: list[dict], key: str, digits: int = 3) -> str:
    if key == "beta2":
        return " / ".join(f"{r['beta2']:g}" for r in rows)
    return " / ".join(fmt(r.get(key), digits) for r in rows)


def read_c14(ev: Evidence) -> Outcome:
    def check(rows):
        pc1 = [r.get("window_pc1") for r in rows]
        if sum(finite(x) for x in pc1) < 2:
            return None, "window PC1 missing"
        return falls(pc1, THRESHOLDS["pc1_tol"]), (
            f"beta2 {_series_text(rows, 'beta2')}: window PC1 {_series_text(rows, 'window_pc1')}%")
    return _beta2_claim(ev, check)


def read_c17(ev: Evidence) -> Outcome:
    def check(rows):
        zero = next((r for r in rows if r["beta2"] == 0.0), None)
        ref = next((r for r in rows if abs(r["beta2"] - 0.95) < 1e-9), None)
        if zero is None or ref is None:
            return None, "needs the beta2 = 0.95 and beta2 = 0 runs"
        # Rule fix: equal spans. A run that diverged early (beta2 = 0) is compared with the others over the
        # steps every run reached (pc1_common, drift_common), not its short span against their full runs.
        ratio = (zero["drift_common"] / ref["drift_common"]
                 if finite(zero.get("drift_common")) and finite(ref.get("drift_common")) and ref["drift_common"]
                 else None)
        text = (f"beta2 {_series_text(rows, 'beta2')}: PC1 over steps <= {rows[0].get('common_last_step')} "
                f"{_series_text(rows, 'pc1_common')}%, best p_ood {_series_text(rows, 'best_p_ood')}, "
                f"drift(0)/drift(.95) over the same span {fmt(ratio)}")
        return rule_c17([r.get("pc1_common") for r in rows], [r.get("best_p_ood") for r in rows], ratio,
                        zero.get("status") == "diverged"), text
    return _beta2_claim(ev, check)


def read_c18(ev: Evidence) -> Outcome:
    def check(rows):
        fits = [(r["beta2"], r["gamma_a"][0]) for r in rows if r.get("gamma_a")]
        if not fits:
            return None, "no gamma fits"
        held = all(finite(f["gamma"]) and f["gamma"] > THRESHOLDS["gamma_superlinear"]
                   and finite(f["r2"]) and f["r2"] >= THRESHOLDS["gamma_r2"] for _, f in fits)
        return held, "gamma_a(first half) " + " / ".join(f"{b:g}: {fmt(f['gamma'])} (R2 {fmt(f['r2'])})"
                                                         for b, f in fits)
    return _beta2_claim(ev, check)


def read_c19(ev: Evidence) -> Outcome:
    def check(rows):
        early = [r.get("early_abs_cos") for r in rows]
        if sum(finite(x) for x in early) < 2:
            return None, "early |C| missing"
        return falls(early, THRESHOLDS["abs_cos_tol"]), (
            f"beta2 {_series_text(rows, 'beta2')}: early |C| {_series_text(rows, 'early_abs_cos')}, mean |C| "
            f"{_series_text(rows, 'mean_abs_cos')}, early corr {_series_text(rows, 'early_corr', digits=2)}")
    return _beta2_claim(ev, check)


def read_c15(ev: Evidence) -> Outcome:
    res = ev.control("sgd_control")
    if res is None:
        return not_measured(ev.missing_control("sgd_control"))
    rows = {r["run"]: r for r in res["rows"]}
    if not all(r in rows for r in ("A", "B", "C")):
        return not_measured(f"control runs present: {', '.join(rows)}; need A, B and C")
    ours = "; ".join(f"{r}: val {fmt(rows[r]['final_val'])}, PC1 {fmt(rows[r]['pc1'], 3)}%, k95 {fmt(rows[r]['k95'])}"
                     for r in rows)
    get = lambda k: {r: rows[r].get(k) for r in rows}  # noqa: E731
    if not all(finite(rows[r].get("final_val")) for r in ("A", "B")):
        return not_measured("final val loss of A or B missing", ours)
    return Outcome(HELD if rule_c15(get("pc1"), get("k95"), get("final_val")) else NOT_HELD, ours)


def _matched_window(res: dict, run: str, label: str) -> dict | None:
    for row in res["rows"]:
        if row["run"] == run:
            for w in row["windows"]:
                if w["window"] == label and "note" not in w["geometry"]:
                    return w["geometry"]
    return None


def _centred_windows(res: dict, run: str) -> tuple[list[dict | None], dict | None]:
    """The geometry of a run's windows centred on its own matched-loss checkpoint (narrow, then wide), and its
    match record."""
    row = next((r for r in res["rows"] if r["run"] == run), None)
    if row is None:
        return [None, None], None
    wins = [w for w in row["windows"] if w.get("kind") == "centred"]
    geos = [w["geometry"] if "note" not in w["geometry"] else None for w in wins[:2]]
    return geos + [None] * (2 - len(geos)), row["match"]


def read_c16(ev: Evidence) -> Outcome:
    """Rule fix: the windows are read at each optimizer's own matched-loss checkpoint (the centred windows), not
    at the paper's fixed step lists, which at another scale need not sit at matched loss."""
    res = ev.control("sgd_matched_valloss")
    if res is None:
        return not_measured(ev.missing_control("sgd_matched_valloss"))
    sgd, m_c = _centred_windows(res, "C")
    adam, m_a = _centred_windows(res, "A")
    if any(g is None for g in sgd) or adam[1] is None:
        return not_measured("a window centred on the matched checkpoint of run C or A has too few checkpoints "
                            "(or the run is absent)")
    ours = (f"SGD+mom @{m_c['step']}: PC1 {fmt(sgd[0]['pc1'])}% / {fmt(sgd[1]['pc1'])}%, k95 {sgd[0]['k95']} / "
            f"{sgd[1]['k95']}, wide-window drift {fmt(sgd[1]['drift'])}; AdamW @{m_a['step']}"
            f"{'' if m_a.get('within_tol') else ' (nearest, outside tolerance)'}: wide-window drift "
            f"{fmt(adam[1]['drift'])}")
    held = rule_c16([(g["pc1"], g["k95"]) for g in sgd], sgd[1]["drift"], adam[1]["drift"])
    return Outcome(HELD if held else NOT_HELD, ours)


def relative_change(x: Sequence[float]) -> float:
    """max_t |x(t) - x(0)| / |x(0)| (NaN when x(0) is 0 or missing)."""
    x = np.asarray([np.nan if v is None else v for v in x], dtype=np.float64)
    return float(np.nanmax(np.abs(x - x[0])) / abs(x[0])) if x.size and finite(x[0]) and x[0] != 0 else math.nan


def read_c20(ev: Evidence) -> Outcome:
    def check(run: RunEvidence):
        res = run.results("reheat")
        rows = [r for r in res["rows"] if r.get("peak") is not None]
        if not rows or not finite(res.get("start_p_ood")):
            return None, "no reheating evals"
        a_rel = [relative_change(r["coords"]["a"]) for r in rows]
        r_rel = [relative_change(r["coords"]["residual_norm"]) for r in rows]
        text = (f"start {fmt(res['start_p_ood'])}; " + ", ".join(
            f"lr {r['lr']:g}: peak {fmt(r['peak'])} @{r['peak_step']}, end {fmt(r['end'])}" for r in rows)
            + "; max rel. change a " + "/".join(fmt(x, 2) for x in a_rel)
            + ", ||r|| " + "/".join(fmt(x, 2) for x in r_rel))
        return rule_c20(res["start_p_ood"], [r["peak"] for r in rows], [r["end"] for r in rows], a_rel, r_rel), text
    return per_seed(ev, "reheat", check)


# ---------------------------------------------------------------------------------------------------------------
# The checklist
# ---------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Claim:
    id: str
    kind: str        # "Q", "S" or "Q+S" (PROTOCOL section 6 tags)
    text: str        # the claim, in our words
    paper: str       # the paper's values
    source: str      # where our numbers come from
    test: str        # the pre-declared decision rule
    read: Callable[[Evidence], Outcome]


def _t(key: str) -> str:
    return f"{THRESHOLDS[key]:g}"


CLAIMS: list[Claim] = [
    Claim("C1", "Q+S", "The probe accuracy p_ood oscillates while the validation loss falls steadily.",
          "p_ood within 0.40-0.78 (s42), 0.20-0.67 (s271); val 10.8 -> 1.22; s42 peak 0.777 @5000; late < 0.2",
          "metrics.jsonl",
          f"at least one peak -> next-trough drop of p_ood passing the prominence rule ({_t('osc_prominence')}) and "
          f"exceeding {_t('osc_sigma')} binomial std at the peak; val loss last < first and Spearman(step, val) <= "
          f"{_t('val_spearman')}", read_c1),
    Claim("C2", "Q+S", "Within every block, the first uncentered principal component dominates the raw drift.",
          "raw PC1 78-81% in every block (s42 80.5 ... 77.9; s271 78.6 ... 78.3)", "trajectory_pca.json (A1)",
          f"raw per-block PC1 >= {_t('pc1_dominant')} in every block", read_c2),
    Claim("C3", "Q+S", "At trunk level, raw PC1 exceeds the row-normalized PC1, and PC1 >> PC2.",
          "row-norm PC1 71.4/71.7% (top-10 denominator), PC2 12.1/11.8%, raw PC1 79.1/79.3%",
          "trajectory_pca.json (A2)",
          f"raw PC1 > row-normalized PC1 (full denominator), and row-normalized PC1 >= {_t('pc1_over_pc2')} x PC2",
          read_c3),
    Claim("C4", "S", "The per-block backbone is stable between adjacent windows (raw drifts from step 1).",
          "adjacent-window |cos| 0.997-0.998", "trajectory_pca.json (A4, per-block variant)",
          f"scale-free version: mean adjacent-window |cos| >= {_t('stability_cos')} in every block", read_c4),
    Claim("C5", "S", "The backbone carries most of the final displacement.",
          "f_b at the final checkpoint 68-72% (ambiguous; the reference code gives 0.865/0.872 at trunk level)",
          "trajectory_pca.json (A3)", f"scale-free version: trunk f_b at the last checkpoint >= {_t('f_b_majority')}",
          read_c5),
    Claim("C6", "Q+S", "The rolling backbone turns fastest just after the lambda switch.",
          "rho mean 0.800/0.793, max 0.936/0.938, min 0.749/0.702 near step 5000; rho > 0.7",
          "trajectory_pca.json (A4)",
          f"argmin of rho(t) lies in [switch, switch + {_t('rho_dip_after')} T] (T = run length), both ends "
          "included, the earliest of equal minima", read_c6),
    Claim("C7", "Q+S", "The late-phase backbone is more dominant than the early one and points elsewhere.",
          "early PC1 60.0/59.2%, late 81.3/81.7%, |<v_E, v_L>| = 0.323 (about 71 degrees)",
          "trajectory_pca.json (A5), nulls.json",
          "late PC1 > early PC1, and |<v_E, v_L>| below the lower end of its N3 band (the run's updates in random "
          "order)", read_c7),
    Claim("C8", "Q+S", "Around the switch, the rolling backbone hands over from v_E to v_L.",
          "A_E .83 .61 .02 .21 .20 .18 .18, A_L .16 .28 .16 .59 .69 .29 .02 at centres 1100 ... 8900 (s42)",
          "trajectory_pca.json (A5)",
          f"mean A_E > mean A_L over window centres <= switch, and mean A_L > mean A_E over centres in "
          f"(switch, switch + {_t('handoff_after')} T]", read_c8),
    Claim("C9", "Q+S", "The backbone coordinate grows superlinearly at first, and its exponent falls over time.",
          "gamma_a +2.07, +0.67, +0.15/+0.12, -0.19/-0.20 on 0-2k, 2-4k, 4-6k, 6-10k; gamma_r +1.24 ... +0.36",
          "trajectory_pca.json (A6)",
          f"gamma_a of the first window (0, 0.2T] > {_t('gamma_superlinear')} with R^2 >= {_t('gamma_r2')}, and "
          f"gamma_a non-increasing over the four windows up to +{_t('gamma_tol')}", read_c9),
    Claim("C10", "Q+S", "corr(p_ood, ||r||) is positive early and negative late.",
          "+0.61/+0.45 full, +0.85/+0.76 on 0-4k, +0.43/+0.28 on 4-10k, -0.73/-0.79 on 6-10k",
          "trajectory_pca.json (A7)", "r on (0, 0.4T] > 0 and r on (0.6T, T] < 0", read_c10),
    Claim("C11", "Q+S", "Update alignment with the block-0 backbone reverses sign after the switch and weakens.",
          "|C| 0.15-0.32 early (peak ~0.32 near 1700, s271), sign flip ~5100, |C| ~0.11 after",
          "update_alignment.json (A8)",
          "a persistent sign flip of C (block 0, LN-inclusive when available) at or after the switch, and mean "
          "|C| after the flip < before", read_c11),
    Claim("C12", "Q+S", "Updates align with the backbone far above the gradient, which sits near the isotropic floor.",
          "|cos(g, v_b)| ~4e-4 (Fig 2) or 0.008-0.012 (sec 9.2); gap '20-30x'", "gradient_alignment.json (A9)",
          f"mean |cos(u, v_b)| >= {_t('update_over_grad')} x mean |cos(g, v_b)|, and mean |cos(g, v_b)| <= "
          f"{_t('grad_over_floor')} x sqrt(2/(pi D))", read_c12),
    Claim("C13", "Q+S", "Fisher curvature along the backbone rises by orders of magnitude; anisotropy peaks after "
          "the switch; v_b is not the top Fisher eigenvector.",
          "q_b 2.4e-6 -> 8.1e-3 (x3000); alpha 1.35 / 1.92 / 12.4 / 4.81 at 200 / 1800 / 4800 / 9600",
          "fisher.json (A10)",
          f"q_b(last) / q_b(first) >= {_t('fisher_rise')}; max alpha > 1 at a step >= the switch; |<u_1, v_b>| < "
          f"{_t('fisher_u1_max')} at every checkpoint", read_c13),
    Claim("C14", "S", "In the [600, 2000] window, PC1 falls as beta2 drops.",
          "window PC1 68.1 / 68.4 / 66.3 / 63.4 / 51.6; mean |cos| .226 ... .099 (beta2 .99 ... 0)",
          "beta2_sweep.json (A13, window variant)",
          f"scale-free version: window PC1 falls as beta2 drops (.99 ... 0): no rise above +{_t('pc1_tol')} point "
          f"between neighbours, and a net fall of more than {_t('pc1_tol')} point",
          read_c14),
    Claim("C15", "Q+S", "SGD-family trajectories are collinear (PC1 ~ 100%, k95 = 1); AdamW is not; plain SGD "
          "fails to train.", "A 61.5% k95 9; B 100% k95 1 (val 8.12); C 100% k95 1 (val 5.10)",
          "sgd_control.json (A12)",
          f"B and C: window PC1 >= {_t('sgd_pc1')}% with k95 = 1; A: k95 >= 2; final val(B) >= final val(A) + "
          f"{_t('sgd_fails_val')}", read_c15),
    Claim("C16", "Q+S", "At matched loss, momentum SGD stays collinear and nearly stationary.",
          "SGD+mom [2000..2400] 98.1% k95 1 drift 0.26; [1800..2600] 97.7% drift 0.60; AdamW [1..600] drift 24.9",
          "sgd_matched_valloss.json (A12)",
          f"the two windows centred on C's own matched-loss checkpoint (+-200 and +-400 paper steps): PC1 >= "
          f"{_t('sgd_pc1')}% with k95 = 1; drift of C's wide window <= {_t('stationary')} x that of AdamW's wide "
          "window centred on AdamW's matched checkpoint", read_c16),
    Claim("C17", "Q+S", "Row-normalized PC1 and best p_ood fall monotonically as beta2 drops; beta2 = 0 blows up.",
          "PC1 68.8 / 68.3 / 66.7 / 63.8 / 52.5; best p .951 / .939 / .814 / .682 / .005; drift x1300 at beta2 = 0",
          "beta2_sweep.json (A13)",
          f"over the span every run reached (equal spans): ordered by decreasing beta2, PC1 and best p_ood fall: no "
          f"rise between neighbours above +{_t('pc1_tol')} point (PC1) / +{_t('p_ood_tol')} (p_ood) and a net fall "
          f"larger than that; drift(beta2=0) >= {_t('blowup')} x drift(0.95) over that span, or the run diverged",
          read_c17),
    Claim("C18", "Q+S", "The early backbone coordinate grows superlinearly for every beta2.",
          "gamma_a(0-2k) 1.97 / 1.94 / 1.93 / 1.98 / 2.45, R^2 > 0.98", "beta2_sweep.json (A13, A6)",
          f"gamma_a on the first half > {_t('gamma_superlinear')} with R^2 >= {_t('gamma_r2')} for every beta2",
          read_c18),
    Claim("C19", "Q+S", "Early update alignment falls as beta2 drops.",
          "early |C| .368 / .363 / .343 / .328 / .269; mean |C| .243 ... .238", "beta2_sweep.json (A13, A8)",
          f"early |C| falls as beta2 drops: no rise between neighbours above +{_t('abs_cos_tol')} and a net fall "
          f"larger than {_t('abs_cos_tol')}", read_c19),
    Claim("C20", "Q+S", "Reheating re-enters the high-p_ood regime only transiently; a(t) barely moves while ||r|| "
          "responds.", "peaks .705 @900 / .782 @1000 / .578 @1500; end .221 / .279 / .421; start 0.16",
          "reheat.json (A14)",
          f"for every LR: peak >= start + {_t('reentry')} and end <= peak - {_t('reentry')}; the largest relative "
          "change of a(t) < that of ||r(t)||", read_c20),
    Claim("C21", "Q+S", "The p_ood switch is mostly transverse to the backbone.",
          "|<v_sw, v_b>| .20-.25 (s42), .28-.31 (s271); c^2 .04-.10; E_2:6 15-22% / 60-67%",
          "trajectory_pca.json (A11)", f"c^2 <= {_t('switch_c2_max')} in every block for the first switch pair",
          read_c21),
    Claim("C22", "S", "Seeds agree closely.", "within 1-2%", "trajectory_pca.json (A1, A2, A4)",
          f"with >= 2 seeds: trunk row-norm PC1, raw PC1, mean per-block PC1 and mean rho (in %) differ by <= "
          f"{_t('seed_pp')} points", read_c22),
]


# ---------------------------------------------------------------------------------------------------------------
# Null verdicts (issue 9): does the statistic a claim rests on beat a structureless trajectory?
# ---------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class NullCheck:
    """The statistic of nulls.json a trajectory claim rests on, the side the paper predicts, and the paper's own
    values of statistics that are defined the same way (fractions, not percent) to place inside or outside our
    band."""
    stat: str
    side: str                                   # "high" or "low"
    paper: tuple[tuple[str, float], ...] = ()


# Rule (also in drift/nulls/trajectory.py and the README): "beyond null" when the key statistic lies outside the N1 central
# 95% band on the predicted side in every seed; N2 and N3 are shown beside it. Fixed before any real-run null.
CLAIM_NULLS = {
    "C2": NullCheck("blocks_pc1_raw_min", "high", (("blocks_pc1_raw_min", 0.779),)),
    "C3": NullCheck("trunk_pc1_rownorm", "high", (("trunk_pc1_raw", 0.791), ("trunk_pc1_rownorm", 0.693),
                                                  ("trunk_pc2_rownorm", 0.121))),
    "C4": NullCheck("blocks_adjacent_cos_min", "high", (("blocks_adjacent_cos_min", 0.997),)),
    "C5": NullCheck("trunk_f_b_final", "high"),
    "C6": NullCheck("rho_min", "low", (("rho_min", 0.749), ("rho_mean", 0.800))),
    "C7": NullCheck("phase_pc1_gap", "high", (("phase_pc1_gap", 0.213), ("phase_abs_cos", 0.323))),
    "C8": NullCheck("handoff_margin", "high"),
    "C9": NullCheck("gamma_a_0_2000", "high", (("gamma_a_0_2000", 2.07),)),
    "C11": NullCheck("update_block0+ln_mean_abs_cos", "high"),
    "C21": NullCheck("switch_c2_blocks_max", "low", (("switch_c2_blocks_max", 0.10),)),
}
F_B_IDENTITY = ("the time mean of f_b equals the row-normalized PC1 share exactly (f_b(t) is the squared cosine of "
                "each normalized drift with v_b, whose mean over rows is sigma_1^2 / T), so it is not separate "
                "evidence")


def _bands_text(entry: dict, kinds) -> str:
    """'N1 [lo, hi], N2 [lo, hi], ...' of one nulls.json entry."""
    return ", ".join(f"{k} [{fmt(entry[k]['lo'])}, {fmt(entry[k]['hi'])}]" for k in kinds if k in entry)


# Control claims: (control run, window of <controls>/analysis/nulls.json, paper PC1 in %); the key statistic is the
# window's row-normalized PC1 and the paper predicts it high (SGD collinear).
CONTROL_NULLS = {"C15": ("C", "standard", 100.0), "C16": ("C", "centred-wide", 97.7)}


def control_null_window(res: dict, run: str, which: str) -> tuple[str, dict] | None:
    """(label, entry) of a control run's window in the control nulls.json: "standard" (Table 4) or
    "centred-wide" (the wider window centred on the run's matched-loss checkpoint)."""
    windows = res["rows"].get(run) or {}
    if which == "centred-wide":
        centred = sorted((k for k in windows if k.startswith("centred")), key=lambda k: float(k.split("-")[-1]))
        which = centred[-1] if centred else ""
    entry = windows.get(which)
    return (which, entry) if entry and "statistics" in entry else None


def control_null_outcome(ev: Evidence, claim_id: str) -> dict:
    from drift.nulls.trajectory import KEY_NULL, NO_NULL, in_band, null_verdict
    run, which, paper = CONTROL_NULLS[claim_id]
    res = ev.control("nulls")
    found = control_null_window(res, run, which) if res is not None else None
    if found is None:
        why = ev.missing_control("nulls") if res is None else f"no null for run {run}'s {which} window"
        return {"null": NO_NULL, "null_text": why, "paper_in_band": []}
    label, entry = found
    e = entry["statistics"]["pc1"]
    bands = _bands_text(e, res["nulls"])
    inside = ([f"the paper's PC1 {fmt(paper)}% lies inside our {KEY_NULL} band"] if in_band(paper, e.get(KEY_NULL))
              else [])
    return {"null": null_verdict(e["observed"], e.get(KEY_NULL), "high"),
            "null_text": f"high side; run {run} {label} window PC1 {fmt(e['observed'])}% vs {bands}",
            "paper_in_band": inside}


# beta2-sweep claims: the statistic of <beta2>/analysis/nulls.json and how it is read (drift/nulls/beta2.py, fixed
# before any real-sweep null): "trend", the observed net fall from the highest to the lowest beta2 of every compared
# p_probe group lies above the N1 band of the null's net fall; "each", every compared run lies above its own N1 band.
BETA2_NULLS = {"C14": ("window_pc1", "trend"), "C17": ("pc1_common", "trend"), "C18": ("gamma_a", "each"),
               "C19": ("early_abs_cos", "trend")}


def beta2_null_outcome(ev: Evidence, claim_id: str) -> dict:
    from drift.nulls.trajectory import BEYOND, KEY_NULL, NO_NULL, WITHIN, null_verdict
    stat, how = BETA2_NULLS[claim_id]
    res = ev.beta2_nulls
    if res is None or not res.get("groups"):
        why = ev.missing_beta2_nulls() if res is None else "no p_probe group with >= 3 beta2 runs"
        return {"null": NO_NULL, "null_text": why, "paper_in_band": []}
    verdicts, parts = [], []
    for label, names in res["groups"].items():
        if how == "trend":
            e = res["trends"][label][stat]
            if "note" in e:
                verdicts.append(NO_NULL)
                parts.append(f"p_probe {label}: {e['note']}")
                continue
            verdicts.append(null_verdict(e["observed"], e.get(KEY_NULL), "high"))
            parts.append(f"p_probe {label}: net fall of {stat} from beta2 {e['beta2'][0]:g} to {e['beta2'][1]:g} "
                         f"{fmt(e['observed'])} vs the null's {_bands_text(e, res['nulls'])}")
            continue
        cells = []
        for name in names:
            e = (res["runs"][name].get("statistics") or {}).get(stat) or {}
            if finite(e.get("observed")):    # as read_c18, a run without a fit is skipped
                verdicts.append(null_verdict(e["observed"], e.get(KEY_NULL), "high"))
                cells.append(f"{name} {fmt(e['observed'])} vs {KEY_NULL} [{fmt(e[KEY_NULL]['lo'])}, "
                             f"{fmt(e[KEY_NULL]['hi'])}]")
        parts.append(f"p_probe {label}: {stat} " + ("; ".join(cells) or "no run with a value"))
    verdict = (NO_NULL if not verdicts or NO_NULL in verdicts else
               BEYOND if all(v == BEYOND for v in verdicts) else WITHIN)
    return {"null": verdict, "null_text": "high side; " + "; ".join(parts), "paper_in_band": []}


def null_outcome(ev: Evidence, claim_id: str) -> dict:
    """{"null": beyond / within / no null / "" (no trajectory null for this claim), "null_text", "paper_in_band"}."""
    from drift.nulls.trajectory import BEYOND, KEY_NULL, NO_NULL, WITHIN, in_band, null_verdict
    if claim_id in CONTROL_NULLS:
        return control_null_outcome(ev, claim_id)
    if claim_id in BETA2_NULLS:
        return beta2_null_outcome(ev, claim_id)
    check = CLAIM_NULLS.get(claim_id)
    if check is None or not ev.runs:
        return {"null": "", "null_text": "", "paper_in_band": []}
    verdicts, parts, inside = [], [], []
    for run in ev.runs:
        res = run.results("nulls")
        entry = res["statistics"].get(check.stat) if res is not None else None
        if entry is None or not finite(entry.get("observed")):
            verdicts.append(NO_NULL)
            parts.append(f"{run.label}: " + (run.missing("nulls") if res is None else f"{check.stat} undefined"))
            continue
        verdicts.append(null_verdict(entry["observed"], entry.get(KEY_NULL), check.side))
        bands = _bands_text(entry, res["nulls"])
        parts.append(f"{run.label}: {check.stat} {fmt(entry['observed'])} vs {bands}")
        for stat, value in check.paper:
            e = res["statistics"].get(stat) or {}
            if in_band(value, e.get(KEY_NULL)):
                inside.append(f"the paper's {stat} {fmt(value)} lies inside our {KEY_NULL} band "
                              f"[{fmt(e[KEY_NULL]['lo'])}, {fmt(e[KEY_NULL]['hi'])}] ({run.label})")
    verdict = (NO_NULL if NO_NULL in verdicts else BEYOND if all(v == BEYOND for v in verdicts) else WITHIN)
    text = f"{check.side} side; " + "; ".join(parts)
    if claim_id == "C5":
        text += "; " + F_B_IDENTITY
    return {"null": verdict, "null_text": text, "paper_in_band": inside}


def evaluate_claims(ev: Evidence) -> list[dict]:
    """One row per claim: id, kind, text, paper, source, test, verdict, ours, reason, and the null comparison
    (null: beyond null / within null / no null, or "" for claims with no trajectory null; null_text;
    paper_in_band: the paper's own values that lie inside our N1 band)."""
    rows = []
    for c in CLAIMS:
        try:
            out = c.read(ev) if c.read is not None else not_measured("reader not available")
        except (KeyError, IndexError, TypeError, ValueError) as e:  # a JSON layout we do not know: say so
            out = not_measured(f"could not read the analysis JSON ({type(e).__name__}: {e})")
        try:
            null = null_outcome(ev, c.id)
        except (KeyError, IndexError, TypeError, ValueError) as e:
            null = {"null": "no null", "null_text": f"could not read nulls.json ({type(e).__name__}: {e})",
                    "paper_in_band": []}
        rows.append({"id": c.id, "kind": c.kind, "text": c.text, "paper": c.paper, "source": c.source,
                     "test": c.test, "verdict": out.verdict, "ours": out.ours, "reason": out.reason, **null})
    return rows
