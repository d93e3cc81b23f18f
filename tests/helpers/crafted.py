"""Crafted evidence with planted outcomes: control, beta2-sweep and reheating JSON in the layouts the analyses
write, and one cpu-preset main run, for the claim readers (tests/test_claims.py) and the tables and figures
(tests/test_report.py). good=True plants every outcome that holds, good=False ones that fail."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from drift.config import resolve
from drift.report import claims as cl, inputs as inp


def _curve(steps, p):
    return {"step": list(steps), "p_ood": list(p), "val_loss": list(np.linspace(8, 3, len(steps)))}


def crafted_reheat(transient: bool = True) -> dict:
    steps = [0, 10, 20, 30, 40]
    rows = []
    for lr, peak in ((1e-3, 0.7), (6e-4, 0.78), (3e-4, 0.58)):
        p = [0.16, peak * 0.8, peak, peak * 0.6 if transient else peak, peak * 0.4 if transient else peak]
        rows.append({"lr": lr, "name": f"lr{lr:g}", "status": "finished", "peak": peak, "peak_step": 20,
                     "first_above": 20 if peak >= 0.6 else None, "end": p[-1], "end_step": 40, "step1": 0.16,
                     "coords": {"step": steps, "a": [10.0, 10.05, 10.1, 10.1, 10.12],
                                "residual_norm": [3.0, 3.3, 3.6, 3.5, 3.4]},
                     "curves": _curve(steps, p)})
    return {"main_run": "runs/cpu_s42", "main_last_step": 1000, "start_p_ood": 0.16, "paper_start_p_ood": 0.16,
            "main_curve": _curve(range(0, 1001, 20), 0.4 + 0.3 * np.sin(np.arange(51) / 4)), "rows": rows}


def crafted_beta2(monotone: bool = True) -> dict:
    rows = []
    pc1 = [68.8, 68.3, 66.7, 63.8, 52.5] if monotone else [63.8, 68.3, 66.7, 68.8, 52.5]
    for b, p, best, early in zip((0.99, 0.95, 0.9, 0.8, 0.0), pc1, (0.95, 0.94, 0.81, 0.68, 0.005),
                                 (0.37, 0.36, 0.34, 0.33, 0.27)):
        rows.append({"name": f"b{b}", "beta2": b, "p_probe": 0.1, "status": "finished", "marker": "", "pc1": p,
                     "pc2": 10.0, "raw_pc1": p + 14, "drift": 1.6e5 if b == 0 else 120.0, "best_p_ood": best,
                     "pc1_common": p, "drift_common": 1.6e5 if b == 0 else 120.0, "common_last_step": 400,
                     "mean_abs_cos": 0.24, "early_abs_cos": early, "early_corr": 0.8, "window_pc1": p - 0.5,
                     "window_abs_cos": 0.22, "gamma_a": [{"gamma": 1.95, "r2": 0.99, "lo": 0, "hi": 200}],
                     "curves": _curve(range(0, 401, 20), np.linspace(0, best, 21))})
    return {"rows": rows}


def crafted_controls() -> tuple[dict, dict]:
    table4 = {"rows": [], "curves": {}}
    for run, pc1, k95, val in (("A", 61.5, 9, 1.6), ("B", 100.0, 1, 8.1), ("C", 99.9, 1, 5.1)):
        table4["rows"].append({"run": run, "optimizer": run, "status": "finished", "marker": "", "final_val": val,
                               "best_p_ood": 0.4 if run == "A" else 0.0, "pc1": pc1, "k95": k95, "k99": k95 + 1,
                               "drift": 100.0, "window": [60, 200]})
        table4["curves"][run] = _curve(range(0, 401, 20), np.zeros(21))

    def window(label, pc1, k95, drift, kind="paper"):
        return {"window": label, "kind": kind, "steps": [1, 2, 3], "missing": [],
                "paper": {"pc1": 98.1} if kind == "paper" else None,
                "geometry": {"window_steps": [1, 2, 3], "pc1": pc1, "k95": k95, "k99": 2, "drift": drift}}
    matched = {"target": 5.1, "rel_tol": 0.02, "rows": [
        {"run": "A", "optimizer": "AdamW", "match": {"step": 20, "val_loss": 4.3, "within_tol": False},
         "windows": [window("[1,200,400,600]", 69.2, 3, 24.9), window("centred +-20", 75.0, 2, 12.0, "centred"),
                     window("centred +-40", 70.0, 3, 24.9, "centred")]},
        {"run": "C", "optimizer": "SGD+momentum", "match": {"step": 400, "val_loss": 5.1, "within_tol": True},
         "windows": [window("[2000,2200,2400]", 98.1, 1, 0.26), window("[1800..2600]", 97.7, 1, 0.6),
                     window("centred +-20", 98.1, 1, 0.26, "centred"),
                     window("centred +-40", 97.7, 1, 0.6, "centred")]}]}
    return table4, matched


def crafted_evidence(good: bool = True) -> inp.Evidence:
    cfg = resolve("cpu", 42)
    steps = list(range(0, 1001, 20))
    p = 0.5 + 0.3 * np.sin(np.arange(len(steps)) / 3) if good else np.zeros(len(steps))
    metrics = [{"step": s, "p_ood": float(v), "val_loss": float(8 - 5 * i / len(steps))}
               for i, (s, v) in enumerate(zip(steps, p))]
    info = {"n_params": 1_300_000, "ckpt_steps": steps, "device": "cpu", "timers": {"compute": 400.0}}
    run = inp.RunEvidence(run_dir=Path("runs/cpu_s42"), info=info, config=cfg, steps=steps, metrics=metrics,
                         analyses={"reheat": crafted_reheat(good)})
    table4, matched = crafted_controls()
    if not good:
        table4["rows"][2]["pc1"], table4["rows"][2]["k95"] = 80.0, 3
    return inp.Evidence([run], Path("runs/ctrl_s42"), Path("runs/beta2_s42"),
                       {"sgd_control": table4, "sgd_matched_valloss": matched}, crafted_beta2(good))


def verdicts(ev) -> dict[str, dict]:
    """The claims checklist's rows by claim id."""
    return {r["id"]: r for r in cl.evaluate_claims(ev)}
