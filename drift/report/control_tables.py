"""The optimizer controls' Tables 4 and 5, the beta2-sweep table and the reheating table, from the control and beta2
directories' analysis JSON and the main runs' reheat.json.
"""

from __future__ import annotations

from drift.paper import PAPER_BETA2, PAPER_REHEAT, PAPER_REHEAT_START, PAPER_TABLE4
from drift.report.inputs import Evidence
from drift.report.latex import esc, not_run, num, table
from drift.report.readers import beta2_groups, relative_change
from drift.report.table_cells import (BETA2_NULL_NOTE, CONTROL_NULL_NOTE, NULL_HEADER, beta2_null_cell,
                                      beta2_trend_notes, control_null_cell)

# ---------------------------------------------------------------------------------------------------------------
# Controls (Tables 4 and 5), beta2 sweep, reheating
# ---------------------------------------------------------------------------------------------------------------

def ours_paper(ours, paper, digits: int = 3) -> str:
    """'ours (paper)' in one cell; the paper value in grey."""
    p = r" {\color{gray}(" + (num(paper, digits) if paper is not None else "--") + ")}"
    return num(ours, digits) + p


def _seed_cells(ev: Evidence, kind: str) -> list[tuple[list[str], Evidence]]:
    """One (leading cells, view) pair per set of a kind: with several sets (one per seed) each row starts with its
    set's name; with one, no such column, so a one-seed report keeps its tables as they were."""
    views = ev.sets(kind)
    return [([esc(v.set_label(kind))] if len(views) > 1 else [], v) for v in views]


def _set_note(ev: Evidence, kind: str) -> str:
    """The caption's clause naming the set a first-set-only table shows, when there are several."""
    views = ev.sets(kind)
    if len(views) < 2:
        return ""
    return esc(f" Shown for {ev.set_label(kind)}, the first of {len(views)} sets by seed; the claims table "
               "gives every set's values.")


def table4(ev: Evidence) -> str:
    label = "tab:table4"
    caption = ("Optimizer controls (Table 4 of the paper): final validation loss, best $p_{ood}$ and the trunk "
               "geometry of the standard window (row-normalized, anchored at its first checkpoint). Ours, with "
               "the paper's value in grey parentheses.")
    if ev.control("sgd_control") is None:
        return not_run(label, caption, ev.missing_control("sgd_control"))
    rows = []
    for lead, view in _seed_cells(ev, "controls"):
        res = view.control("sgd_control")
        if res is None:   # a set without its analysis: say so in its row rather than drop the seed
            rows.append(lead + [r"\multicolumn{11}{l}{\emph{not run}: " + esc(view.missing_control("sgd_control"))
                                + "}"])
            continue
        for r in res["rows"]:
            p = PAPER_TABLE4.get(r["run"], {})
            window = "--" if not r.get("window") else f"{r['window'][0]}--{r['window'][1]}"
            rows.append(lead + [esc(r["run"].replace("_prime", "'")), esc(r["optimizer"]),
                                ours_paper(r["final_val"], p.get("final_val")),
                                ours_paper(r["best_p_ood"], p.get("best_p_ood")),
                                ours_paper(r.get("pc1"), p.get("pc1")), ours_paper(r.get("k95"), p.get("k95")),
                                num(r.get("k99")), ours_paper(r.get("drift"), p.get("drift")), window,
                                control_null_cell(view, r["run"], "standard"),
                                esc(r.get("marker") or r.get("status", ""))])
    header = ["set"] * (len(ev.sets("controls")) > 1) + [
        "run", "optimizer", "final val", r"best $p_{ood}$", r"PC1 \%", "k95", "k99", "drift", "window",
        rf"PC1 {NULL_HEADER}", "status"]
    return table(label, caption + CONTROL_NULL_NOTE, "l" * len(header), header, rows, size=r"\footnotesize")


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
    return table(label, caption + CONTROL_NULL_NOTE + _set_note(ev, "controls"), "llllllll",
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
    rows, marks, notes = [], [], []
    for lead, view in _seed_cells(ev, "beta2"):
        where = (lead[0] + " ") if lead else ""
        if view.beta2 is None:   # a sweep without its table: say so in its row rather than drop the seed
            rows.append(lead + [r"\multicolumn{11}{l}{\emph{not run}: " + esc(view.missing_beta2()) + "}"])
            continue
        for p_probe, group in beta2_groups(view.beta2).items():
            for r in group:
                p = PAPER_BETA2.get(round(r["beta2"], 2), {})
                ga = (r.get("gamma_a") or [{}])[0].get("gamma")
                name = f"{r['beta2']:g} ({p_probe:g})"
                if r.get("marker"):   # the status goes to the notes: a status column would push the table off the page
                    marks.append(f"{where}{name} {esc(r['marker'])}")
                rows.append(lead + [
                    name + (r"$^\dagger$" if r.get("marker") else ""), ours_paper(r.get("pc1"), p.get("pc1")),
                    ours_paper(r.get("raw_pc1"), p.get("raw_pc1")), ours_paper(r.get("drift"), p.get("drift")),
                    ours_paper(r.get("best_p_ood"), p.get("best_p_ood")),
                    ours_paper(r.get("mean_abs_cos"), p.get("mean_abs_cos")),
                    ours_paper(r.get("early_abs_cos"), p.get("early_abs_cos")),
                    ours_paper(r.get("early_corr"), p.get("early_corr"), 2),
                    ours_paper(ga, PAPER_BETA2_GAMMA.get(round(r["beta2"], 2), (None,))[0], 3),
                    beta2_null_cell(view, r["name"], "gamma_a"),
                    ours_paper(r.get("window_pc1"), p.get("window_pc1"))])
        notes.append(where + beta2_trend_notes(view))
    header = ["set"] * (len(ev.sets("beta2")) > 1) + [
        r"$\beta_2$ ($p_{probe}$)", r"PC1 \%", r"raw PC1 \%", "drift", r"best $p_{ood}$", "mean $|C|$",
        "early $|C|$", "early corr", r"$\gamma_a$ early", rf"$\gamma_a$ {NULL_HEADER}", r"window PC1 \%"]
    notes = ((r"$^\dagger$ " + "; ".join(marks) + ". ") if marks else "") + " ".join(notes)
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
    elsewhere = [f"{run.label} from step {res['start_step']} ({res.get('start_reason', '')})" for run in runs
                 if (res := run.results("reheat")).get("start_step", res["main_last_step"]) != res["main_last_step"]]
    if elsewhere:  # C20 asks for a late low-p_ood start (drift/analysis/reheat.py LOW_P_OOD)
        caption += " Not from the last checkpoint: " + esc("; ".join(elsewhere)) + "."
    header = ["run", "peak lr", "start", "peak", "peak step", r"first $\ge$0.60", "end", r"$\Delta a/a$",
              r"$\Delta\|r\|/\|r\|$"]
    return table(label, caption, "l" * len(header), header, rows, size=r"\footnotesize")
