"""LaTeX tables for the report, generated from run.json and analysis JSON only (PROTOCOL section 6).

`write_report(evidence, out_dir)` writes paper/generated/*.tex: one file per table (each a complete `table` float
with caption and label, or a short "not run" table naming the script to run), `macros.tex` (every number the prose
quotes) and `claims.tex` (the checklist with verdicts, from drift.report.claims). Each table puts the paper's value beside
ours; with two seeds a cell reads "s42 / s271" (the paper's own convention), with more it reads mean +- half-range.

    from drift.report.inputs import load_evidence
    from drift.report.tables import write_report
    write_report(load_evidence(["runs/cpu_s42"], controls="runs/ctrl_s42"), "paper/generated")
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from drift.report.claims import evaluate_claims
from drift.report.inputs import Evidence, RunEvidence
from drift.report.readers import HELD, NOT_HELD, NOT_MEASURED, beta2_groups, relative_change
from drift.report.rules import finite
from drift.config import PRESETS, Config, resolve
from drift.paper import PAPER_BETA2, PAPER_REHEAT, PAPER_REHEAT_START, PAPER_TABLE4
from drift.run.params import trunk_size
from drift.run.info import status_text
from drift.report.latex import esc, not_run, num, paper_pair, spread, table, write_text
from drift.report.evidence import NOT_DIAGNOSTIC, annotate, claim_evidence
from drift.report.evidence_tables import evidence_table, load_rule_history, rule_history_table, rules_commit

PAPER_N_PARAMS = 51_045_888

def seeds_header(ev: Evidence) -> str:
    labels = [r.label for r in ev.runs]
    if len(labels) <= 2:
        return "ours (" + " / ".join(labels) + ")"
    return rf"ours (mean $\pm$ half-range, {len(labels)} seeds)"


def values(ev: Evidence, name: str, get: Callable[[dict, RunEvidence], object]) -> list:
    """get(results, run) for every seed (None where the analysis is absent or the key is missing)."""
    out = []
    for run in ev.runs:
        res = run.results(name)
        try:
            out.append(get(res, run) if res is not None else None)
        except (KeyError, IndexError, TypeError):
            out.append(None)
    return out


def need(ev: Evidence, name: str) -> str | None:
    """Why a per-run table cannot be built (None if every seed has the analysis)."""
    if not ev.runs:
        return "no main run given"
    missing = [r.missing(name) for r in ev.runs if r.results(name) is None]
    return "; ".join(missing) if missing else None


NULL_HEADER = r"N1 band"
NULL_NOTE = (r" The last column is the central 95\% band of the same statistic for a matched random walk (N1: "
             r"independent isotropic steps with the run's own step norms; trajectory\_nulls.py), per seed.")


def band_cell(entry: dict | None, digits: int = 3, scale: float = 1.0) -> str:
    """'lo--hi' of the key null's band of one nulls.json entry ({"observed", "N1": band, ...}); 'n/a' if absent."""
    from drift.nulls.trajectory import KEY_NULL
    b = (entry or {}).get(KEY_NULL) or {}
    return f"{num(b['lo'], digits, scale)}--{num(b['hi'], digits, scale)}" if finite(b.get("lo")) else "n/a"


def null_cell(ev: Evidence, stat: str | None, scale: float = 1.0, digits: int = 3) -> str:
    """The N1 band 'lo--hi' of one nulls.json statistic, per seed; '--' for a row with no null statistic."""
    if stat is None:
        return "--"
    cells = [band_cell(((run.results("nulls") or {}).get("statistics", {})).get(stat), digits, scale)
             for run in ev.runs]
    return " / ".join(cells) if cells else "n/a"


CONTROL_NULL_NOTE = (r" The PC1 band is the central 95\% of the window PC1 when the window's own updates are "
                     r"replaced by a matched random walk (N1; trajectory\_nulls.py -{}-controls).")


def control_null_cell(ev: Evidence, run: str, window: str) -> str:
    """N1 band of a control window's PC1 (%), from <controls>/analysis/nulls.json."""
    res = ev.control("nulls")
    entry = ((res or {}).get("rows", {}).get(run) or {}).get(window) or {}
    return band_cell((entry.get("statistics") or {}).get("pc1"))


BETA2_NULL_NOTE = (r" The $\gamma_a$ N1 band is the central 95\% of the same $\gamma_a$ when the run's updates are "
                   r"replaced by a matched random walk with their norms (N1; trajectory\_nulls.py -{}-beta2); the "
                   r"notes give each trend's net fall from the highest to the lowest $\beta_2$ against the N1 band "
                   r"of the null's net fall.")


def beta2_null_cell(ev: Evidence, run: str, stat: str) -> str:
    """N1 band of one beta2 run's statistic, from <beta2>/analysis/nulls.json."""
    entry = ((ev.beta2_nulls or {}).get("runs", {}).get(run) or {}).get("statistics") or {}
    return band_cell(entry.get(stat))


BETA2_TREND_LABELS = {"pc1_common": "PC1 over the common span (C17)", "window_pc1": "window PC1 (C14)",
                      "early_abs_cos": "early $|C|$ (C19)"}


def beta2_trend_notes(ev: Evidence) -> str:
    """One sentence per compared p_probe group: each trend's observed net fall and the N1 band of the null's."""
    res = ev.beta2_nulls
    if res is None:
        return esc(ev.missing_beta2_nulls()) if ev.beta2_dir is not None else ""
    out = []
    for group, trends in res.get("trends", {}).items():
        cells = []
        for stat, label in BETA2_TREND_LABELS.items():
            e = trends.get(stat) or {"note": "absent"}
            if "note" not in e:
                cells.append(rf"{label}, $\beta_2$ {e['beta2'][0]:g} to {e['beta2'][1]:g}: {num(e['observed'])} "
                             f"(N1 {band_cell(e)})")
        if cells:
            out.append(rf"Net falls at $p_{{probe}}$ {esc(group)}: " + "; ".join(cells) + ".")
    return " ".join(out) or r"No $p_{probe}$ group has three or more runs: no trend null."


def with_nulls(ev: Evidence, rows: list[list[str]], stats: Sequence, scale: float = 1.0) -> list[list[str]]:
    """Each row with its N1-band cell appended (stats: one nulls.json key or None per row)."""
    return [row + [null_cell(ev, stat, scale)] for row, stat in zip(rows, stats)]


# ---------------------------------------------------------------------------------------------------------------
# Setup (from run.json)
# ---------------------------------------------------------------------------------------------------------------

IGNORED_FOR_PRESET = {"vocab_size", "seed", "device", "threads", "compile", "amp", "cache_dir"}


def infer_preset(cfg: Config) -> str:
    """The named preset a config came from ("cpu"), or the closest one with the differing fields listed."""
    ours = {**cfg.to_dict()["model"], **cfg.to_dict()["train"]}
    best = None
    for name in PRESETS:
        ref = resolve(name, cfg.train.seed).to_dict()
        ref = {**ref["model"], **ref["train"]}
        diff = sorted(k for k in ref if k not in IGNORED_FOR_PRESET and ref[k] != ours.get(k))
        if best is None or len(diff) < len(best[1]):
            best = (name, diff)
    name, diff = best
    return name if not diff else f"{name} + " + ", ".join(f"{k}={ours[k]}" for k in diff)


SETUP_ROWS: list[tuple[str, Callable[[Config, dict], object]]] = [
    ("layers / d_model / heads / d_ff", lambda c, i: f"{c.model.n_layer} / {c.model.d_model} / {c.model.n_head} / "
                                                     f"{c.model.d_ff}"),
    ("context length", lambda c, i: c.model.seq_len),
    ("vocabulary (tokenizer)", lambda c, i: f"{c.model.vocab_size:,} ({c.train.tokenizer})"),
    ("parameters (tied head once)", lambda c, i: f"{i['n_params']:,}" if i.get("n_params") else "n/a"),
    ("trunk dimension D", lambda c, i: f"{trunk_size(c.model):,}"),
    ("corpus (stories used)", lambda c, i: f"{c.train.data_source} ({c.train.n_train_stories:,})"),
    ("probe rate; gaps in / ood", lambda c, i: f"{c.train.p_probe:g}; {c.train.gap_in_min}-{c.train.gap_in_max} / "
                                               f"{c.train.gap_ood_min}-{c.train.gap_ood_max}"),
    ("probe eval examples", lambda c, i: c.train.n_probe_eval),
    ("optimizer (beta1, beta2, eps)", lambda c, i: f"{c.train.optimizer} ({c.train.beta1:g}, {c.train.beta2:g}, "
                                                   f"{c.train.eps:g})"),
    ("peak lr; warmup; floor", lambda c, i: f"{c.train.lr:g}; {c.train.warmup_steps}; {c.train.min_lr_frac:g}"),
    ("weight decay; grad clip", lambda c, i: f"{c.train.weight_decay:g}; {c.train.grad_clip:g}"),
    ("batch (micro x accum)", lambda c, i: f"{c.train.micro_batch} x {c.train.grad_accum}"),
    ("steps; lambda switch", lambda c, i: f"{c.train.total_steps:,}; {c.train.lambda_switch_step:,}"),
    ("lambda early -> late", lambda c, i: f"{c.train.lambda_early:g} -> {c.train.lambda_late:g}"),
    ("eval / checkpoint every", lambda c, i: f"{c.train.eval_every} / {c.train.ckpt_every}"),
    ("checkpoints saved", lambda c, i: len(i.get("ckpt_steps", [])) or "n/a"),
    ("run status", lambda c, i: status_text(i)),  # "diverged at step N" must reach the report
    ("device; wall time", lambda c, i: f"{i.get('device', '?')}; "
                                       f"{sum((i.get('timers') or {}).values()) / 60:.1f} min"),
]


def _same_or_each(cells: Sequence[str]) -> str:
    return esc(cells[0]) if len(set(cells)) == 1 else " / ".join(esc(c) for c in cells)


def setup_table(ev: Evidence) -> str:
    label, caption = "tab:setup", "Setup actually run, read from each run's run.json, beside the paper's run."
    if not ev.runs:
        return not_run(label, caption, "no main run given")
    paper = resolve("paper", 42)
    paper_info = {"n_params": PAPER_N_PARAMS, "ckpt_steps": [0] * 51, "device": "GPU", "timers": {}}
    rows = [["preset", "paper", _same_or_each([infer_preset(r.config) for r in ev.runs])],
            ["seeds", "42 / 271", esc(" / ".join(str(r.config.train.seed) for r in ev.runs))]]
    for name, get in SETUP_ROWS:
        ours = [str(get(r.config, r.info)) for r in ev.runs]
        ref = {"device; wall time": "GPU; n/a", "checkpoints saved": "51", "run status": "finished"}.get(name) \
            or get(paper, paper_info)
        rows.append([esc(name), esc(ref), _same_or_each(ours)])
    columns = "l" + r">{\raggedright\arraybackslash}p{0.28\linewidth}" * 2
    return table(label, caption, columns, ["quantity", "paper", seeds_header(ev)], rows)


# ---------------------------------------------------------------------------------------------------------------
# Geometry of the drift (A1-A7, A11), from trajectory_pca.json
# ---------------------------------------------------------------------------------------------------------------

PAPER_BLOCK_PC1 = {"s42": [80.5, 81.2, 80.7, 80.2, 79.7, 79.0, 78.8, 77.9],
                   "s271": [78.6, 80.6, 80.4, 80.4, 80.1, 79.1, 79.3, 78.3]}
TRAJ = "trajectory_pca"


def traj(ev: Evidence, *path, scale: float = 1.0) -> list:
    """One value of trajectory_pca.json per seed (None where absent), multiplied by `scale` if numeric."""
    vals = values(ev, TRAJ, lambda r, _: _dig(r, path))
    return [v * scale if finite(v) else v for v in vals]


def blocks_table(ev: Evidence) -> str:
    label, caption = "tab:blocks", ("Per-block share of the first uncentered component of the raw drifts from "
                                    r"step 1 (Table 2 of the paper; in \%). Rows every checkpoint, and every "
                                    "second checkpoint (the paper's default stride of 400 steps, scaled).")
    why = need(ev, TRAJ)
    if why:
        return not_run(label, caption, why)
    n_layer = max(len(r.results(TRAJ)["blocks"]["layers"]) for r in ev.runs)
    rows = []
    for l in range(n_layer):
        paper = paper_pair(*(PAPER_BLOCK_PC1[s][l] for s in PAPER_BLOCK_PC1)) if l < 8 else "--"
        rows.append([str(l), paper, spread(traj(ev, "blocks", "pc1", "block", l, scale=100)),
                     spread(traj(ev, "blocks", "pc1", "block+ln", l, scale=100)),
                     spread(traj(ev, "blocks", "pc1_stride2", "block+ln", l, scale=100))])
    rows = with_nulls(ev, rows, [f"block{l}_pc1_raw" for l in range(n_layer)], 100)
    header = ["block", "paper (s42 / s271)", f"matrices, {seeds_header(ev)}", "with LN", "with LN, stride 2",
              f"{NULL_HEADER} (matrices)"]
    return table(label, caption + NULL_NOTE, "llllll", header, rows)


def trunk_table(ev: Evidence) -> str:
    label, caption = "tab:trunk", ("Trunk-level spectrum of the drifts from step 1 and the backbone fraction "
                                   r"$f_b=a^2/\|x\|^2$ (in \%). ``Top-10'' divides by the ten largest "
                                   "$\\sigma_j^2$ only, as the original code does.")
    why = need(ev, TRAJ)
    if why:
        return not_run(label, caption, why)
    t = lambda key: spread(traj(ev, "trunk", key, scale=100))  # noqa: E731
    blockmean = lambda key: spread([float(np.mean(v)) * 100 if v else None  # noqa: E731
                                    for v in traj(ev, "blocks", key, "block+ln")])
    rows = [["row-normalized PC1, top-10 denominator", "71.4 / 71.7", t("pc1_rownorm_top10")],
            ["row-normalized PC1, full denominator", r"$\approx$69.3 (s42)", t("pc1_rownorm_full")],
            ["row-normalized PC2, top-10 / full", "12.1 / 11.8 (top-10)",
             t("pc2_rownorm_top10") + " ; " + t("pc2_rownorm_full")],
            ["raw PC1", "79.1 / 79.3", t("pc1_raw_full")],
            ["raw PC1, stride 2", "--", t("pc1_raw_stride2")],
            ["$k_{95}$ / $k_{99}$ (row-normalized)", "--",
             spread(traj(ev, "trunk", "rownorm", "k95")) + " ; " + spread(traj(ev, "trunk", "rownorm", "k99"))],
            ["$f_b$ at the last checkpoint, trunk", "68--72 (text); 86.5 / 87.2 (code)", t("f_b_final")],
            ["$f_b$ time mean, trunk", "--", t("f_b_mean")],
            ["$f_b$ at the last checkpoint, mean over blocks (+LN)", "--", blockmean("f_b_final")],
            ["$f_b$ time mean, mean over blocks (+LN)", "--", blockmean("f_b_mean")]]
    stats = ["trunk_pc1_rownorm_top10", "trunk_pc1_rownorm", "trunk_pc2_rownorm", "trunk_pc1_raw", None, None,
             "trunk_f_b_final", "trunk_f_b_mean", "blocks_f_b_final_mean", None]
    rows = with_nulls(ev, rows, stats, 100)
    rows[5][-1] = null_cell(ev, "trunk_k95_rownorm") + " ; --"
    note = (r" The time mean of $f_b$ equals the row-normalized PC1 share exactly ($f_b(t)$ is the squared cosine "
            r"of each normalized drift with $v_b$, whose mean over the rows is $\sigma_1^2/T$): it restates that "
            "share and is no separate confirmation.")
    return table(label, caption + note + NULL_NOTE, "llll", ["quantity (\\%)", "paper", seeds_header(ev),
                                                            NULL_HEADER], rows)


def rolling_table(ev: Evidence) -> str:
    label, caption = "tab:rolling", ("Stability of the backbone. Top: trunk rolling backbone (windows of ten "
                                     "checkpoints, drifts from each window's start, row-normalized) and the "
                                     r"adjacent-window index $\rho$. Bottom: per-block variant (raw drifts from "
                                     "step 1).")
    why = need(ev, TRAJ)
    if why:
        return not_run(label, caption, why)
    roll = lambda key: traj(ev, "rolling", "trunk", key)  # noqa: E731
    fam = lambda key: traj(ev, "rolling", "blocks_summary", "block+ln", key)  # noqa: E731
    rows = [[r"mean $\rho$", "0.800 / 0.793", spread(roll("rho_mean"))],
            [r"max $\rho$", "0.936 / 0.938", spread(roll("rho_max"))],
            [r"min $\rho$ (step)", r"0.749 / 0.702 ($\approx$5000)",
             spread(roll("rho_min")) + " (" + spread(roll("rho_argmin_step"), 4) + ")"],
            [r"$\lambda$ switch; run length", "4000; 10000",
             spread(traj(ev, "setup", "switch_step"), 5) + "; " + spread(traj(ev, "setup", "total_steps"), 5)],
            ["windows", "41", spread([len(v) if v is not None else None for v in roll("centers")])],
            [r"per block: mean adjacent $|\cos|$ (range over blocks)", "0.997--0.998",
             spread(fam("rho_mean_min"), 4) + " -- " + spread(fam("rho_mean_max"), 4)],
            [r"per block: min adjacent $|\cos|$", "--", spread(fam("rho_min"), 4)]]
    rows = with_nulls(ev, rows, ["rho_mean", "rho_max", "rho_min", None, None, None, None])
    rows[5][-1] = (null_cell(ev, "blocks_adjacent_cos_min", digits=4) + " -- "
                   + null_cell(ev, "blocks_adjacent_cos_max", digits=4) + " (matrices)")
    return table(label, caption + NULL_NOTE, "llll", ["quantity", "paper", seeds_header(ev), NULL_HEADER], rows)


PAPER_HANDOFF = {1100: (0.83, 0.16), 2300: (0.61, 0.28), 3500: (0.02, 0.16), 4700: (0.21, 0.59),
                 5300: (0.20, 0.69), 7100: (0.18, 0.29), 8900: (0.18, 0.02)}


def _nearest(centers, values, target):
    if not centers:
        return None
    c = np.asarray(centers, dtype=np.float64)
    return values[int(np.argmin(np.abs(c - target)))]


def phase_table(ev: Evidence) -> str:
    label, caption = "tab:phases", ("Phase backbones: $v_E$ from the drifts before the $\\lambda$ switch, $v_L$ "
                                    "from those after it (relative to the switch checkpoint), both row-normalized "
                                    "with the full denominator, and the handoff $A_E$, $A_L$ of the rolling "
                                    "backbone at the paper's window centres scaled to our run (nearest centre).")
    why = need(ev, TRAJ)
    if why:
        return not_run(label, caption, why)
    skipped = values(ev, TRAJ, lambda r, _: r["phases"].get("skipped"))
    if any(skipped):
        return not_run(label, caption, next(s for s in skipped if s))
    ph = lambda key, scale=1.0: traj(ev, "phases", key, scale=scale)  # noqa: E731
    rows = [[r"early PC1 (\%)", "60.0 / 59.2", spread(ph("early_pc1_full", 100))],
            [r"late PC1 (\%)", "81.3 / 81.7", spread(ph("late_pc1_full", 100))],
            [r"$|\langle v_E, v_L\rangle|$ (angle)", r"0.323 (71$^\circ$)",
             spread(ph("abs_cos")) + " (" + spread(ph("angle_deg")) + r"$^\circ$)"]]
    for centre, (a_e, a_l) in PAPER_HANDOFF.items():
        fr = [centre * r.total_steps / 10_000 for r in ev.runs]
        ours_e = values(ev, TRAJ, lambda r, run: _nearest(r["phases"]["centers"], r["phases"]["A_E"],
                                                          centre * run.total_steps / 10_000))
        ours_l = values(ev, TRAJ, lambda r, run: _nearest(r["phases"]["centers"], r["phases"]["A_L"],
                                                          centre * run.total_steps / 10_000))
        rows.append([f"$A_E$ / $A_L$ at centre {centre} (ours {spread(fr, 4)})", f"{a_e:.2f} / {a_l:.2f}",
                     spread(ours_e, 2) + " ; " + spread(ours_l, 2)])
    margin = values(ev, "nulls", lambda r, _: r["statistics"]["handoff_margin"]["observed"])
    rows.append([r"handoff margin: min(mean $A_E-A_L$ before, mean $A_L-A_E$ in (switch, switch+0.2T])", "--",
                 spread(margin, 2)])
    stats = ["phase_early_pc1", "phase_late_pc1", "phase_abs_cos"] + [None] * len(PAPER_HANDOFF) + ["handoff_margin"]
    rows = with_nulls(ev, rows, stats)
    for i in (0, 1):
        rows[i][-1] = null_cell(ev, stats[i], 100)
    return table(label, caption + NULL_NOTE, "llll", ["quantity", "paper (s42)", seeds_header(ev), NULL_HEADER],
                 rows)


def switching_table(ev: Evidence) -> str:
    label, caption = "tab:switching", ("The first $p_{ood}$ switch (peak to next trough): its alignment "
                                       r"$c=|\langle v_{sw}, v_b\rangle|$ with each block's raw backbone, the "
                                       r"backbone share $c^2$, the share $E_{2:6}$ of its transverse part on "
                                       "components 2--6, and the number of independent switch directions.")
    why = need(ev, TRAJ)
    if why:
        return not_run(label, caption, why)
    firsts = values(ev, TRAJ, lambda r, _: r["switching"]["first"])
    if not all(firsts):
        return not_run(label, caption, "no p_ood peak-to-trough pair in "
                       + ", ".join(r.label for r, f in zip(ev.runs, firsts) if not f) + " (no oscillation)")
    summ = lambda key: traj(ev, "switching", "first", "summary", "block+ln", key)  # noqa: E731
    rows = [[r"pair (peak $\to$ trough)", r"1800 $\to$ 2000 (s42)",
             esc(" / ".join(f"{f['pair'][0]}->{f['pair'][1]}" for f in firsts))],
            ["$c$ per block (min--max)", ".20--.25 / .28--.31", spread(summ("c_min")) + " -- " + spread(summ("c_max"))],
            ["$c^2$ (min--max)", ".04--.10", spread(summ("c2_min")) + " -- " + spread(summ("c2_max"))],
            ["$E_{2:6}$ (min--max)", "15--22\\% / 60--67\\%",
             spread(summ("e_2_6_min")) + " -- " + spread(summ("e_2_6_max"))],
            ["$c$, trunk", "--", spread(traj(ev, "switching", "first", "trunk", "c"))],
            ["independent switch directions (trunk)", r"$\geq$10", spread(traj(ev, "switching", "dimension",
                                                                            "effective_dim"))],
            ["max pairwise $|\\cos|$ of switch displacements", "$<$0.08",
             spread(traj(ev, "switching", "dimension", "max_abs_offdiag_cos"))]]
    rows = with_nulls(ev, rows, [None, None, None, None, None, None, None])
    rows[2][-1] = null_cell(ev, "switch_c2_blocks_max") + " (max, matrices)"
    rows[4][-1] = null_cell(ev, "switch_c2_trunk") + " ($c^2$)"
    return table(label, caption + NULL_NOTE, "llll", ["quantity (blocks with LN)", "paper", seeds_header(ev),
                                                     NULL_HEADER], rows)


PAPER_GAMMA = {(0, 2000): ("+2.07 / +2.07", "+1.24 / +1.26"), (2000, 4000): ("+0.67 / +0.67", "-0.39 / -0.43"),
               (4000, 6000): ("+0.15 / +0.12", "-1.33 / -1.38"), (6000, 10000): ("-0.19 / -0.20", "+0.36 / +0.32"),
               (0, 4000): ("+1.74", "+0.84"), (4000, 10000): ("-0.08", "-0.31")}


def _window_label(w: dict) -> str:
    return f"({w['paper_lo']}, {w['paper_hi']}]"


def gamma_table(ev: Evidence) -> str:
    label, caption = "tab:gamma", (r"Power-law exponents of $|a(t)|$ and $\|r(t)\|$ (trunk) with $R^2$ in log "
                                   "space, on the paper's windows scaled to our run length.")
    why = need(ev, TRAJ)
    if why:
        return not_run(label, caption, why)
    windows = ev.runs[0].results(TRAJ)["power_laws"]["windows"]
    rows = []
    for i, w in enumerate(windows):
        pa, pr = PAPER_GAMMA.get((w["paper_lo"], w["paper_hi"]), ("--", "--"))
        fit = lambda series, key: traj(ev, "power_laws", series, i, key)  # noqa: E731
        ours_w = spread([_dig(r.results(TRAJ), ("power_laws", "windows", i, "hi")) for r in ev.runs], 5)
        rows.append([_window_label(w), ours_w, pa, spread(fit("a", "gamma")), spread(fit("a", "r2")), pr,
                     spread(fit("r_norm", "gamma")), spread(fit("r_norm", "r2")),
                     null_cell(ev, f"gamma_a_{w['paper_lo']}_{w['paper_hi']}")])
    header = ["paper window", "our hi", r"$\gamma_a$ paper", r"$\gamma_a$ ours", "$R^2$", r"$\gamma_r$ paper",
              r"$\gamma_r$ ours", "$R^2$", rf"$\gamma_a$ {NULL_HEADER}"]
    return table(label, caption + NULL_NOTE, "lllllllll", header, rows, size=r"\footnotesize")


PAPER_CORR = {(0, 10000): "+0.61 / +0.45", (0, 4000): "+0.85 / +0.76", (4000, 10000): "+0.43 / +0.28",
              (6000, 10000): "-0.73 / -0.79"}


def correlation_table(ev: Evidence) -> str:
    label, caption = "tab:corr", (r"Pearson correlation of $p_{ood}(t)$ with $\|r(t)\|$ (trunk) over the "
                                  "evaluated checkpoints of each window (step 1 excluded), windows scaled.")
    why = need(ev, TRAJ)
    if why:
        return not_run(label, caption, why)
    windows = ev.runs[0].results(TRAJ)["correlations"]["windows"]
    rows = []
    for i, w in enumerate(windows):
        rows.append([_window_label(w), PAPER_CORR.get((w["paper_lo"], w["paper_hi"]), "--"),
                     spread(traj(ev, "correlations", "p_ood_vs_r_norm", i, "r"), 2),
                     spread(traj(ev, "correlations", "p_ood_vs_r_norm", i, "n"))])
    return table(label, caption, "llll", ["paper window", "paper", seeds_header(ev), "points"], rows)


# ---------------------------------------------------------------------------------------------------------------
# Mechanism: update alignment, gradient alignment, Fisher (A8-A10)
# ---------------------------------------------------------------------------------------------------------------

def _update_summary(res: dict, scope_pref: Sequence[str], kind: str = "raw") -> dict | None:
    """The consecutive-update summary of the first scope present, with the min |C| added."""
    for scope in scope_pref:
        if scope in res["scopes"] and kind in res["scopes"][scope]:
            entry = res["scopes"][scope][kind]
            abs_cos = [c for c in entry["consecutive"]["abs_cos"] if finite(c)]
            return {**entry["consecutive_summary"], "min_abs_cos": min(abs_cos) if abs_cos else None}
    return None


def alignment_table(ev: Evidence) -> str:
    label, caption = "tab:alignment", ("Update and gradient alignment with the backbone (A8, A9). Block 0 uses "
                                       "the per-block raw $v_b$; the gradient rows average the per-batch "
                                       r"$|\cos(g, v_b)|$ over the checkpoints.")
    why = need(ev, "update_alignment") or need(ev, "gradient_alignment")
    if why:
        return not_run(label, caption, why)
    u = lambda key, scopes=("block0+ln", "block0"), kind="raw": values(  # noqa: E731
        ev, "update_alignment", lambda r, _: _update_summary(r, scopes, kind)[key])
    g = lambda *path: values(ev, "gradient_alignment", lambda r, _: _dig(r, path))  # noqa: E731
    rows = [
        ["block 0: $|C|$ min -- max", "0.15--0.34 (s42)", spread(u("min_abs_cos")) + " -- " + spread(u("max_abs_cos"))],
        ["block 0: mean $|C|$", "--", spread(u("mean_abs_cos"))],
        ["block 0: max $|C|$ (step)", r"$\approx$0.32 (1700, s271)",
         spread(u("max_abs_cos")) + " (" + spread(u("max_abs_cos_end_step"), 4) + ")"],
        ["block 0: sign flip of $C$ (step)", r"$\approx$5100 (s271)", spread(u("flip_end_step"), 4)],
        ["block 0: mean $|C|$ before / after flip", r"-- / $\approx$0.11",
         spread(u("mean_abs_cos_before_flip")) + " ; " + spread(u("mean_abs_cos_after_flip"))],
        ["trunk: mean $|C|$ (row-norm $v_b$)", "--",
         spread(u("mean_abs_cos", ("trunk",), "row_normalized"))],
        [r"gradient $|\cos(g, v_b)|$, composite", r"$\approx 4\times10^{-4}$ or 0.008--0.012",
         spread(g("summary", "grad_mean_abs_cos"))],
        [r"gradient $|\cos|$, LM-only / probe-only", "--",
         spread(g("summary", "grad_lm_mean_abs_cos")) + " ; " + spread(g("summary", "grad_probe_mean_abs_cos"))],
        [r"floor $\sqrt{2/(\pi D)}$ / $1/\sqrt{D}$", r"$4.5\times10^{-4}$ / $5.6\times10^{-4}$",
         spread(g("floors", "abs_cos_mean_asymptotic")) + " ; " + spread(g("floors", "cos_rms"))],
        ["empirical floor (random directions)", "--", spread(g("summary", "empirical_floor"))],
        ["update / gradient mean $|\\cos|$", r"``20--30$\times$''", spread(g("summary", "update_over_grad"), 3)],
        ["gradient / floor", r"$\approx$1", spread(g("summary", "grad_over_floor_asymptotic"), 3)],
        ["dimension $D$ (scope)", "3,147,776 (block 0 + LN)",
         esc(" / ".join(f"{d:,} ({s})" for d, s in zip(g("floors", "D"), g("scope"))))],
    ]
    stats = [None, "update_block0+ln_mean_abs_cos", None, "update_block0+ln_flip_step", None, None, None, None,
             None, None, None, None, None]
    rows = with_nulls(ev, rows, stats)
    rows[4][-1] = "-- ; " + null_cell(ev, "update_block0+ln_abs_cos_after_flip")
    note = (" The null rows use the LN-inclusive block 0 and the analysis checkpoints of the trajectory analysis "
            "(consecutive updates).")
    return table(label, caption + NULL_NOTE + note, "llll", ["quantity", "paper", seeds_header(ev), NULL_HEADER],
                 rows)


def _dig(d, path):
    for key in path:
        d = d[key]
    return d


PAPER_FISHER = {200: (2.4e-6, 1.35), 1800: (2.5e-6, 1.92), 4800: (1.6e-4, 12.4), 9600: (8.1e-3, 4.81)}


def fisher_table(ev: Evidence) -> str:
    label, caption = "tab:fisher", ("Fisher Rayleigh quotients $q(v)=\\|Gv\\|^2/M$ on the trunk (A10): backbone "
                                    "$v_b$ (raw PC1), switching direction, PC2, the mean over random directions "
                                    "orthogonal to $v_b$, the anisotropy $\\alpha$, and the overlap of $v_b$ with "
                                    "the top Fisher eigenvector. Paper (s42): steps 200/1800/4800/9600.")
    why = need(ev, "fisher")
    if why:
        return not_run(label, caption, why)
    rows = []
    for run in ev.runs:
        for r in run.results("fisher")["steps"]:
            rows.append([esc(run.label), str(r["step"]), esc(",".join(r.get("roles", []))), num(r["q"]["v_b"]),
                         num(r["q"].get("v_sw")), num(r["q"].get("v_pc2")), num(r["q_random_mean"]),
                         num(r["alpha"]), num(r["u1_overlap"]["v_b"])])
    for step, (q_b, alpha) in PAPER_FISHER.items():
        rows.append(["paper", str(step), "", num(q_b), "", "", "", num(alpha), ""])
    header = ["run", "step", "role", "$q(v_b)$", "$q(v_{sw})$", "$q(v_{PC2})$", r"$\overline{q(w)}$",
              r"$\alpha$", r"$|\langle u_1, v_b\rangle|$"]
    return table(label, caption, "llllllllr", header, rows, size=r"\footnotesize")


# ---------------------------------------------------------------------------------------------------------------
# Controls (Tables 4 and 5), beta2 sweep, reheating
# ---------------------------------------------------------------------------------------------------------------

def ours_paper(ours, paper, digits: int = 3) -> str:
    """'ours (paper)' in one cell; the paper value in grey."""
    p = r" {\color{gray}(" + (num(paper, digits) if paper is not None else "--") + ")}"
    return num(ours, digits) + p


def table4(ev: Evidence) -> str:
    label = "tab:table4"
    caption = ("Optimizer controls (Table 4 of the paper): final validation loss, best $p_{ood}$ and the trunk "
               "geometry of the standard window (row-normalized, anchored at its first checkpoint). Ours, with "
               "the paper's value in grey parentheses.")
    res = ev.control("sgd_control")
    if res is None:
        return not_run(label, caption, ev.missing_control("sgd_control"))
    rows = []
    for r in res["rows"]:
        p = PAPER_TABLE4.get(r["run"], {})
        window = "--" if not r.get("window") else f"{r['window'][0]}--{r['window'][1]}"
        rows.append([esc(r["run"].replace("_prime", "'")), esc(r["optimizer"]),
                     ours_paper(r["final_val"], p.get("final_val")), ours_paper(r["best_p_ood"], p.get("best_p_ood")),
                     ours_paper(r.get("pc1"), p.get("pc1")), ours_paper(r.get("k95"), p.get("k95")),
                     num(r.get("k99")), ours_paper(r.get("drift"), p.get("drift")), window,
                     control_null_cell(ev, r["run"], "standard"), esc(r.get("marker") or r.get("status", ""))])
    header = ["run", "optimizer", "final val", r"best $p_{ood}$", r"PC1 \%", "k95", "k99", "drift", "window",
              rf"PC1 {NULL_HEADER}", "status"]
    return table(label, caption + CONTROL_NULL_NOTE, "lllllllllll", header, rows, size=r"\footnotesize")


def table5(ev: Evidence) -> str:
    label = "tab:table5"
    caption = ("Geometry at matched validation loss (Table 5 of the paper). Windows are the paper's step lists "
               "scaled to our run length, plus windows centred on each run's matched checkpoint; PC1 row-"
               "normalized, paper values in grey.")
    res = ev.control("sgd_matched_valloss")
    if res is None:
        return not_run(label, caption, ev.missing_control("sgd_matched_valloss"))
    rows = []
    for r in res["rows"]:
        m = r["match"]
        for w in r["windows"]:
            g, p = w["geometry"], w.get("paper") or {}
            steps = g.get("window_steps") or []
            span = f"{steps[0]}..{steps[-1]} ({len(steps)})" if steps else "--"
            cells = ([ours_paper(g.get("pc1"), p.get("pc1")), ours_paper(g.get("k95"), p.get("k95")),
                      ours_paper(g.get("k99"), p.get("k99")), ours_paper(g.get("drift"), p.get("drift")),
                      control_null_cell(ev, r["run"], w["window"]) if w.get("kind") == "centred" else "--"]
                     if "note" not in g else [r"\multicolumn{5}{l}{" + esc(g["note"]) + "}"])
            rows.append([esc(r["run"].replace("_prime", "'")), esc(w["window"]), span, *cells])
        rows.append(["", r"\multicolumn{7}{l}{\emph{matched: step " + num(m["step"]) + ", val " + num(m["val_loss"])
                     + (" (within tolerance)" if m["within_tol"] else " (outside tolerance)") + "}}"])
    notes = esc(f"target val loss {num(res['target'])} (run C's final val loss; tolerance "
                f"{100 * res['rel_tol']:.0f}%)")
    return table(label, caption + CONTROL_NULL_NOTE, "llllllll",
                 ["run", "window (paper steps)", "our steps (n)", r"PC1 \%", "k95", "k99", "drift",
                  rf"PC1 {NULL_HEADER}"], rows, notes=notes, size=r"\footnotesize")


PAPER_BETA2_GAMMA = {0.99: (1.97, 0.78), 0.95: (1.94, 0.78), 0.90: (1.93, 0.84), 0.80: (1.98, 0.91),
                     0.0: (2.45, 1.08)}


def beta2_table(ev: Evidence) -> str:
    label = "tab:beta2"
    caption = (r"$\beta_2$ sweep (A13): trunk geometry of the whole run (row-normalized PC1 with the full "
               r"denominator, raw PC1, drift $\|\theta_T-\theta_1\|$), best $p_{ood}$, update alignment (mean and "
               r"early $|C|$), early corr$(p_{ood}, \|r\|)$, $\gamma_a$ of the first half, and the [600, 2000] "
               r"window variant. Paper values (section 6) in grey.")
    if ev.beta2 is None:
        return not_run(label, caption, ev.missing_beta2())
    rows, marks = [], []
    for p_probe, group in beta2_groups(ev.beta2).items():
        for r in group:
            p = PAPER_BETA2.get(round(r["beta2"], 2), {})
            ga = (r.get("gamma_a") or [{}])[0].get("gamma")
            name = f"{r['beta2']:g} ({p_probe:g})"
            if r.get("marker"):   # the status goes to the notes: a status column would push the table off the page
                marks.append(f"{name} {esc(r['marker'])}")
            rows.append([name + (r"$^\dagger$" if r.get("marker") else ""), ours_paper(r.get("pc1"), p.get("pc1")),
                         ours_paper(r.get("raw_pc1"), p.get("raw_pc1")), ours_paper(r.get("drift"), p.get("drift")),
                         ours_paper(r.get("best_p_ood"), p.get("best_p_ood")),
                         ours_paper(r.get("mean_abs_cos"), p.get("mean_abs_cos")),
                         ours_paper(r.get("early_abs_cos"), p.get("early_abs_cos")),
                         ours_paper(r.get("early_corr"), p.get("early_corr"), 2),
                         ours_paper(ga, PAPER_BETA2_GAMMA.get(round(r["beta2"], 2), (None,))[0], 3),
                         beta2_null_cell(ev, r["name"], "gamma_a"),
                         ours_paper(r.get("window_pc1"), p.get("window_pc1"))])
    header = [r"$\beta_2$ ($p_{probe}$)", r"PC1 \%", r"raw PC1 \%", "drift", r"best $p_{ood}$", "mean $|C|$",
              "early $|C|$", "early corr", r"$\gamma_a$ early", rf"$\gamma_a$ {NULL_HEADER}", r"window PC1 \%"]
    notes = ((r"$^\dagger$ " + "; ".join(marks) + ". ") if marks else "") + beta2_trend_notes(ev)
    return table(label, caption + BETA2_NULL_NOTE, "l" * len(header), header, rows, notes=notes,
                 size=r"\scriptsize\setlength{\tabcolsep}{3pt}")


def _first_above(ours, paper: dict) -> str:
    """First step with p_ood >= 0.60, 'never' when it is never reached (the paper's 3e-4 run included)."""
    text = lambda v: "never" if v is None else num(v)  # noqa: E731
    return text(ours) + (r" {\color{gray}(" + text(paper.get("first_060")) + ")}" if paper else "")


def reheat_table(ev: Evidence) -> str:
    label = "tab:reheat"
    caption = ("Reheating from the last checkpoint with a fresh optimizer (A14): start $p_{ood}$, peak and its "
               "step, the first step with $p_{ood}\\ge 0.60$, the final $p_{ood}$, and the largest relative change "
               r"of $a(t)$ and $\|r(t)\|$ (trunk, against the main run's step-1 reference and $v_b$). Paper (s42) "
               "values in grey.")
    runs = [r for r in ev.runs if r.results("reheat") is not None]
    if not runs:
        return not_run(label, caption, "; ".join(r.missing("reheat") for r in ev.runs) or "no main run given")
    rows = []
    for run in runs:
        res = run.results("reheat")
        for r in res["rows"]:
            p = PAPER_REHEAT.get(r["lr"], {})
            k = r["coords"]
            rows.append([esc(run.label), f"{r['lr']:g}", ours_paper(res.get("start_p_ood"), PAPER_REHEAT_START),
                         ours_paper(r.get("peak"), p.get("peak")), ours_paper(r.get("peak_step"), p.get("peak_step")),
                         _first_above(r.get("first_above"), p),
                         ours_paper(r.get("end"), p.get("end")), num(relative_change(k["a"])),
                         num(relative_change(k["residual_norm"]))])
    header = ["run", "peak lr", "start", "peak", "peak step", r"first $\ge$0.60", "end", r"$\Delta a/a$",
              r"$\Delta\|r\|/\|r\|$"]
    return table(label, caption, "l" * len(header), header, rows, size=r"\footnotesize")



# ---------------------------------------------------------------------------------------------------------------
# Claims checklist and macros
# ---------------------------------------------------------------------------------------------------------------

VERDICT_MARK = {HELD: r"\textbf{held}", NOT_HELD: r"\textbf{not held}", NOT_MEASURED: r"\emph{not measured}"}


def claims_table(rows: list[dict]) -> str:
    """A longtable: id, claim and its pre-declared test, the paper's value, ours, the verdict (and why)."""
    lines = [r"\begingroup\footnotesize",
             r"\begin{longtable}{@{}" + "".join(rf">{{\raggedright\arraybackslash}}p{{\dimexpr{w}\linewidth-2\tabcolsep\relax}}"
                                                for w in (0.08, 0.23, 0.15, 0.22, 0.12, 0.2)) + "@{}}",
             r"\caption{Claims checklist. Each claim's test is in the second column (the rule history, "
             r"Table~\ref{tab:rulehistory}, lists the rules changed after results existed); [Q] marks the "
             r"scale-free part of a claim, [S] a number specific to the paper's scale. A held rule that a matched "
             r"random walk also satisfies (in more than 5\% of its draws) reads \emph{held, not diagnostic}. The "
             r"last column compares the statistic a claim rests on with null trajectories (N1 matched random walk, "
             r"N2 sign-flipped and N3 permuted updates) over seeds: beyond a null when a one-sided t-test of the "
             r"per-seed differences passes at 5\% with every seed on the predicted side (Table~\ref{tab:evidence}); "
             r"below it, the earlier per-seed rule: outside the N1 central 95\% band in every seed.}"
             r"\label{tab:claims}\\",
             r"\toprule id & claim \emph{and test} & paper & ours & verdict & null \\ \midrule\endfirsthead",
             r"\toprule id & claim \emph{and test} & paper & ours & verdict & null \\ \midrule\endhead",
             r"\bottomrule\endfoot"]
    for r in rows:
        ours = "" if r["ours"] == "n/a" and r["reason"] else esc(r["ours"])
        if r["reason"]:
            ours += (r" \newline " if ours else "") + r"\emph{" + esc(r["reason"]) + "}"
        lines.append(f"{r['id']} [{r['kind']}] & {esc(r['text'])} \\newline \\emph{{Test: {esc(r['test'])}}} & "
                     f"{esc(r['paper'])} & {ours} & {_verdict_cell(r)} & {_null_cell(r)} \\\\")
    lines += [r"\end{longtable}", r"\endgroup"]
    return "\n".join(lines) + "\n"


NULL_MARK = {"beyond null": r"\textbf{beyond null}", "within null": r"\textbf{within null}",
             "no null": r"\emph{no null}", "": "--"}


def _verdict_cell(row: dict) -> str:
    mark = VERDICT_MARK[row["verdict"]]
    if row.get("label") == NOT_DIAGNOSTIC:
        mark += r", not diagnostic"
        if row.get("sharp"):
            mark += r" \newline sharp rule: " + esc(row["sharp"])
    return mark


def _null_cell(row: dict) -> str:
    """The seed verdict, then the earlier per-seed band verdict, the bands it was read from, and any paper value
    that lies inside our band."""
    if not row.get("null") and not row.get("seed_verdict"):
        return "--"
    parts = [r"\textbf{" + esc(row["seed_verdict"]) + "}"] if row.get("seed_verdict") else []
    if not row.get("null"):
        return r" \newline ".join(parts)
    parts += ["N1 band, every seed: " + NULL_MARK[row["null"]], esc(row["null_text"])]
    parts += [r"\emph{" + esc(p) + "}" for p in row.get("paper_in_band", [])]
    return r" \newline ".join(parts)


def _macro(name: str, value) -> str:
    return f"\\newcommand{{\\{name}}}{{{value}}}\n"


def macros(ev: Evidence, claim_rows: list[dict]) -> str:
    """Every number the prose quotes, as \\newcommand definitions (all from run.json / the claims)."""
    # The header keeps the module's old path so the committed report rebuilds byte-identical.
    out = "% generated by drift/report.py from run.json and analysis JSON; do not edit\n"
    counts = {v: sum(r["verdict"] == v for r in claim_rows) for v in (HELD, NOT_HELD, NOT_MEASURED)}
    out += _macro("NClaims", len(claim_rows)) + _macro("NClaimsHeld", counts[HELD])
    out += _macro("NClaimsNotHeld", counts[NOT_HELD]) + _macro("NClaimsNotMeasured", counts[NOT_MEASURED])
    held_ids = ", ".join(r["id"] for r in claim_rows if r["verdict"] == HELD) or "none"
    out += _macro("ClaimsHeldList", held_ids)
    out += _macro("ClaimsNotHeldList", ", ".join(r["id"] for r in claim_rows if r["verdict"] == NOT_HELD) or "none")
    out += _macro("ScaleSentence", scale_sentence(ev))
    nulled = [r for r in claim_rows if r.get("null")]
    beyond = [r["id"] for r in nulled if r["null"] == "beyond null"]
    within = [r["id"] for r in nulled if r["null"] == "within null"]
    out += _macro("NClaimsWithNull", len(nulled)) + _macro("NClaimsBeyondNull", len(beyond))
    out += _macro("NClaimsWithinNull", len(within))
    out += _macro("NClaimsNoNull", len(nulled) - len(beyond) - len(within))
    out += _macro("ClaimsBeyondNullList", ", ".join(beyond) or "none")
    out += _macro("ClaimsWithinNullList", ", ".join(within) or "none")
    held_within = [r["id"] for r in nulled if r["verdict"] == HELD and r["null"] == "within null"]
    out += _macro("ClaimsHeldWithinNullList", ", ".join(held_within) or "none")
    out += _macro("NullNote", null_note(claim_rows))
    tested = [r for r in claim_rows if r.get("seed_verdict")]
    beyond_n1 = [r["id"] for r in tested if "N1" in r["seed_verdict"].removeprefix("beyond ").split(", ")
                 and r["seed_verdict"].startswith("beyond")]
    one_seed = [r["id"] for r in tested if r["seed_verdict"] == "one seed: no test"]
    out += _macro("NClaimsTested", len(tested)) + _macro("NClaimsBeyondNOne", len(beyond_n1))
    out += _macro("ClaimsBeyondNOneList", ", ".join(beyond_n1) or "none")
    out += _macro("ClaimsOneSeedList", ", ".join(one_seed) or "none")
    lax = [r["id"] for r in claim_rows if r.get("label") == NOT_DIAGNOSTIC]
    out += _macro("NClaimsNotDiagnostic", len(lax)) + _macro("ClaimsNotDiagnosticList", ", ".join(lax) or "none")
    if not ev.runs:
        return out + _macro("RunPreset", "none") + _macro("RunSeeds", "none") + _macro("ParamRatio", "n/a") + \
            _macro("TrunkRatio", "n/a") + _macro("RunSteps", "n/a") + _macro("RunSwitch", "n/a") + \
            _macro("RunCorpus", "n/a") + _macro("RunNParams", "n/a") + _macro("NSeeds", 0) + \
            _macro("FigWidth", r"\linewidth")
    run = ev.runs[0]
    n_params = run.info.get("n_params")
    paper = resolve("paper", 42)
    out += _macro("RunPreset", esc(infer_preset(run.config).partition(" + ")[0])) + _macro("NSeeds", len(ev.runs))
    out += _macro("RunSeeds", ", ".join(str(r.config.train.seed) for r in ev.runs))
    out += _macro("RunNParams", f"{n_params:,}" if n_params else "n/a")
    out += _macro("ParamRatio", f"{PAPER_N_PARAMS / n_params:.0f}" if n_params else "n/a")
    out += _macro("TrunkRatio", f"{trunk_size(paper.model) / trunk_size(run.config.model):.0f}")
    out += _macro("RunSteps", f"{run.total_steps:,}") + _macro("RunSwitch", f"{run.switch_step:,}")
    corpus = {"embedded": "a synthetic story corpus embedded in the package",
              "hub": "TinyStories"}.get(run.config.train.data_source, esc(run.config.train.data_source))
    out += _macro("RunCorpus", corpus)
    return out + _macro("FigWidth", r"\linewidth" if len(ev.runs) > 1 else r"0.72\linewidth")


def null_note(claim_rows: list[dict]) -> str:
    """The closing note: per trajectory claim, our key statistic against the N1 band (or why there is none), and
    the paper's values that fall inside our band."""
    items = []
    for r in claim_rows:
        if not r.get("null"):
            continue
        extra = "".join("; " + esc(p) for p in r.get("paper_in_band", []))
        items.append(rf"\item[{r['id']}] {NULL_MARK[r['null']]} (verdict: {r['verdict']}). "
                     f"{esc(r['null_text'])}{extra}.")
    if not items:
        return "No trajectory claim was compared with a null."
    return r"\begin{description}\small " + " ".join(items) + r"\end{description}"


def scale_sentence(ev: Evidence) -> str:
    """The plain statement of how our runs compare with the paper's (model size, steps, corpus)."""
    if not ev.runs:
        return "No training run was given, so every table below reads \\emph{not run}."
    run = ev.runs[0]
    preset = infer_preset(run.config)
    if preset == "paper":
        return "These runs use the original study's configuration (model, data and schedule)."
    n_params = run.info.get("n_params")
    ratio = f"about {PAPER_N_PARAMS / n_params:.0f} times fewer parameters than" if n_params else "far smaller than"
    corpus = ("a synthetic corpus of simple stories generated inside the package (not TinyStories), with a small "
              "word-level tokenizer" if run.config.train.data_source == "embedded" else
              f"the {esc(run.config.train.data_source)} corpus")
    base, _, changed = preset.partition(" + ")
    preset_text = f"\\texttt{{{esc(base)}}} configuration" + (" with a few settings changed" if changed else "")
    return (f"The runs reported here use the {preset_text}: a {run.config.model.n_layer}-"
            f"layer model of width {run.config.model.d_model} with {n_params or 0:,} parameters, {ratio} the "
            f"original 51M-parameter model, trained for {run.total_steps:,} steps instead of 10,000 on {corpus}. "
            f"It is a scaled-down test of the same procedure, not a replication of the original numbers.")


# ---------------------------------------------------------------------------------------------------------------
# Writing everything
# ---------------------------------------------------------------------------------------------------------------

TABLES: dict[str, Callable[[Evidence], str]] = {
    "setup": setup_table,
    "table2_blocks": lambda ev: blocks_table(ev),
    "trunk_pca": lambda ev: trunk_table(ev),
    "rolling": lambda ev: rolling_table(ev),
    "phases": lambda ev: phase_table(ev),
    "switching": lambda ev: switching_table(ev),
    "gamma": lambda ev: gamma_table(ev),
    "correlation": lambda ev: correlation_table(ev),
    "alignment": alignment_table,
    "fisher": fisher_table,
    "table4": table4,
    "table5": table5,
    "beta2": beta2_table,
    "reheat": reheat_table,
}


def write_report(ev: Evidence, out_dir) -> tuple[list[Path], list[dict]]:
    """Write every table, claims.tex and macros.tex into out_dir; returns (paths, claim rows). A table whose
    builder fails on an unknown JSON layout becomes a 'not run' table that says so, so the document compiles."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, build in TABLES.items():
        try:
            text = build(ev)
        except (KeyError, IndexError, TypeError, ValueError) as e:
            text = not_run(f"tab:{name}", esc(name), f"the analysis JSON could not be read ({type(e).__name__}: {e})")
        written.append(write_text(out_dir / f"{name}.tex", text))
    rows = annotate(evaluate_claims(ev), claim_evidence(ev))
    history = load_rule_history()
    written.append(write_text(out_dir / "claims.tex", claims_table(rows)))
    written.append(write_text(out_dir / "evidence.tex", evidence_table(rows)))
    written.append(write_text(out_dir / "rule_history.tex", rule_history_table(history)))
    written.append(write_text(out_dir / "macros.tex", macros(ev, rows) + _macro("RulesCommit", esc(rules_commit(history)))))
    return written, rows
