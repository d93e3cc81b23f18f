"""The mechanism tables (A8-A10): update and gradient alignment with the backbone, and the Fisher table, from each
main run's update_alignment.json, gradient_alignment.json and fisher.json.
"""

from __future__ import annotations

from typing import Sequence

from drift.report.inputs import Evidence
from drift.report.latex import esc, not_run, num, spread, table
from drift.report.rules import finite
from drift.report.table_cells import NULL_HEADER, dig, need, null_cell, null_note, seeds_header, values, with_nulls

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
    g = lambda *path: values(ev, "gradient_alignment", lambda r, _: dig(r, path))  # noqa: E731
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
    return table(label, caption + null_note(ev) + note, "llll", ["quantity", "paper", seeds_header(ev), NULL_HEADER],
                 rows)


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
