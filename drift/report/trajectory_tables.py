"""The geometry-of-the-drift tables (A1-A7, A11), from each main run's trajectory_pca.json: blocks, trunk, rolling
backbones, phases, switching, gamma and correlation, each with the paper's values beside ours.
"""

from __future__ import annotations

import numpy as np

from drift.report.inputs import Evidence
from drift.report.latex import esc, not_run, paper_pair, spread, table
from drift.report.rules import finite
from drift.report.table_cells import NULL_HEADER, dig, need, null_cell, null_note, seeds_header, values, with_nulls

# ---------------------------------------------------------------------------------------------------------------
# Geometry of the drift (A1-A7, A11), from trajectory_pca.json
# ---------------------------------------------------------------------------------------------------------------

PAPER_BLOCK_PC1 = {"s42": [80.5, 81.2, 80.7, 80.2, 79.7, 79.0, 78.8, 77.9],
                   "s271": [78.6, 80.6, 80.4, 80.4, 80.1, 79.1, 79.3, 78.3]}
TRAJ = "trajectory_pca"


def traj(ev: Evidence, *path, scale: float = 1.0) -> list:
    """One value of trajectory_pca.json per seed (None where absent), multiplied by `scale` if numeric."""
    vals = values(ev, TRAJ, lambda r, _: dig(r, path))
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
    return table(label, caption + null_note(ev), "llllll", header, rows)


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
    return table(label, caption + note + null_note(ev), "llll", ["quantity (\\%)", "paper", seeds_header(ev),
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
    return table(label, caption + null_note(ev), "llll", ["quantity", "paper", seeds_header(ev), NULL_HEADER], rows)


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
    return table(label, caption + null_note(ev), "llll", ["quantity", "paper (s42)", seeds_header(ev), NULL_HEADER],
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
    return table(label, caption + null_note(ev), "llll", ["quantity (blocks with LN)", "paper", seeds_header(ev),
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
        ours_w = spread([dig(r.results(TRAJ), ("power_laws", "windows", i, "hi")) for r in ev.runs], 5)
        rows.append([_window_label(w), ours_w, pa, spread(fit("a", "gamma")), spread(fit("a", "r2")), pr,
                     spread(fit("r_norm", "gamma")), spread(fit("r_norm", "r2")),
                     null_cell(ev, f"gamma_a_{w['paper_lo']}_{w['paper_hi']}")])
    header = ["paper window", "our hi", r"$\gamma_a$ paper", r"$\gamma_a$ ours", "$R^2$", r"$\gamma_r$ paper",
              r"$\gamma_r$ ours", "$R^2$", rf"$\gamma_a$ {NULL_HEADER}"]
    return table(label, caption + null_note(ev), "lllllllll", header, rows, size=r"\footnotesize")


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
