"""The report's evidence table (per claim: the key statistic over seeds against each null, effect sizes, the seed
test, whether the rule is diagnostic), the de-confounded variants' table (report/variants.py) and the rule-history
table (experiments/rule_history.json).

    from drift.report.evidence_tables import evidence_table, rule_history_table, variants_table
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np

from drift.report import verdicts as V
from drift.report.latex import esc, num
from drift.report.rules import finite

RULE_HISTORY = Path(__file__).resolve().parents[2] / "experiments" / "rule_history.json"


def _longtable(widths, caption: str, label: str, header: list[str], rows: list[str], size=r"\scriptsize") -> str:
    # each column is w * linewidth less its two separators, so widths summing to 1 fill the line exactly
    cols = "".join(rf">{{\raggedright\arraybackslash}}p{{\dimexpr{w}\linewidth-2\tabcolsep\relax}}" for w in widths)
    head = " & ".join(header) + r" \\ \midrule"
    return "\n".join([r"\begingroup" + size, r"\setlength{\tabcolsep}{3pt}",
                      r"\begin{longtable}{@{}" + cols + "@{}}",
                      rf"\caption{{{caption}}}\label{{{label}}}\\",
                      r"\toprule " + head + r"\endfirsthead", r"\toprule " + head + r"\endhead",
                      r"\bottomrule\endfoot", *rows, r"\end{longtable}", r"\endgroup"]) + "\n"


def _mean_sd(values) -> str:
    v = [x for x in values if finite(x)]
    if not v:
        return "n/a"
    if len(v) == 1:
        return f"{num(v[0], 4)} (1 seed)"
    return rf"{num(float(np.mean(v)), 4)} $\pm$ {num(float(np.std(v, ddof=1)), 2)} ({len(v)} seeds)"


def _effect(test: dict | None) -> str:
    if not test or test.get("verdict") == V.ONE_SEED or not finite(test.get("effect", math.nan)):
        return "--"
    p = test["p"]
    return f"{num(test['effect'], 3)} (p {num(p, 2)})"


def _diag(e: dict) -> str:
    if e["diagnostic"] is None:
        return r"\emph{not judged}"
    basis = e.get("diagnostic_basis", "draws")
    if basis == "N1 median":
        return ("yes" if e["diagnostic"] else "no") + " (N1 median)"
    return ("yes" if e["diagnostic"] else "no") + f" (N1 passes {num(100 * e['n1_pass_rate'], 3)}\\%)"


def evidence_table(rows: list[dict]) -> str:
    """One line per claim with a key statistic: statistic, ours over seeds, each null's median (mean over seeds),
    effect size against N1 and N3 in between-seed sd with the one-sided p, the seed verdict, diagnostic."""
    lines = []
    for r in rows:
        e = r.get("evidence")
        if not e:
            continue
        meds = " / ".join(num(float(np.nanmean(e["null_medians"][k])) if any(finite(x) for x in e["null_medians"][k])
                                else math.nan, 4) for k in V.NULL_KINDS)
        label = esc(r["label"]) + (f" \\newline sharp rule: {esc(r['sharp'])}" if r.get("sharp") else "")
        lines.append(f"{r['id']} & {esc(e['stat'])} ({e['side']}) & {_mean_sd(e['observed'])} & {meds} & "
                     f"{_effect(e['tests'].get('N1'))} & {_effect(e['tests'].get('N3'))} & "
                     f"\\textbf{{{esc(e['verdict'])}}} & {_diag(e)} & {label} \\\\")
    if not lines:
        return "% no claim with a key statistic was measured\n"
    caption = (r"Evidence per claim over seeds. The key statistic (predicted side), ours as mean $\pm$ sd over "
               r"seeds, each null's median (N1 matched random walk / N2 sign-flipped / N3 permuted updates; mean "
               r"over seeds of each seed's own null), the effect size against N1 and N3 (mean difference on the "
               r"predicted side in units of the between-seed sd, with the one-sided t-test's p), the verdict over "
               r"seeds (beyond a null: $p < 0.05$ and every seed on the predicted side), whether the claim's rule "
               r"is diagnostic (it holds in at most 5\% of the N1 draws), and the claim's label: a held rule that "
               r"is not diagnostic reads \emph{held, not diagnostic}, with the sharp rule (the old rule and beyond "
               r"N1 over seeds) beside it. Rules: drift/report/verdicts.py.")
    return _longtable((0.05, 0.16, 0.13, 0.15, 0.09, 0.09, 0.1, 0.1, 0.13), caption, "tab:evidence",
                      ["id", "key statistic", "ours", "null medians N1 / N2 / N3", "effect vs N1", "effect vs N3",
                       "over seeds", "diagnostic", "label"], lines)


def variants_table(rows: list[dict]) -> str:
    """One line per de-confounded variant: claim, variant, its rule, ours, and the verdict (with the reason)."""
    lines = [f"{r['id']} & {esc(r['variant'])} & {esc(r['rule'])} & {esc(r['ours'])} & \\textbf{{{esc(r['verdict'])}}}"
             + (f" \\newline {esc(r['reason'])}" if r["reason"] else "") + r" \\" for r in rows]
    caption = (r"De-confounded variants, judged beside the claims' old rules (Table~\ref{tab:claims}), never "
               r"instead of them; their rules were fixed before any of their results existed "
               r"(drift/report/verdicts.py, rule 4). C12 compares updates with the summed gradients of the same "
               r"steps; C15 adds plain SGD without weight decay; C16 moves the matched checkpoints past the "
               r"warmup; C14, C17 and C19 share one span, from the warmup's end to the last step every run "
               r"reached.")
    return _longtable((0.05, 0.12, 0.25, 0.43, 0.15), caption, "tab:variants",
                      ["id", "variant", "rule", "ours", "verdict"], lines)


def load_rule_history(path: Path = RULE_HISTORY) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {"entries": []}


def rule_history_table(history: dict) -> str:
    """Every recorded rule change: claim, date, commit, old -> new, why, and whether results existed then."""
    # claim lists written "C2,C3,..." get a space after each comma, so the cell can wrap
    lines = [f"{esc(', '.join(c.strip() for c in h['claim'].split(',')))} & {esc(h['date'][:10])} {esc(h['commit'])} & {esc(h['old_rule'])} & "
             f"{esc(h['new_rule'])} & {esc(h['why'])} & {esc(h['timing'])} \\\\" for h in history.get("entries", [])]
    if not lines:
        return "% no rule history recorded\n"
    caption = (r"Rule history (experiments/rule\_history.json, reconstructed from the git log): every change to a "
               r"decision rule, with the results that existed when it was made. \emph{changed after results} "
               r"means results the rule judges had been committed before the change.")
    return _longtable((0.08, 0.09, 0.25, 0.25, 0.24, 0.09), caption, "tab:rulehistory",
                      ["claim", "date, commit", "old rule", "new rule", "why", "timing"], lines, size=r"\tiny")


def changes_after_results(history: dict) -> tuple[int, list[str]]:
    """How many recorded rule changes were made after results they judge existed, and the claims they touched
    (in claim order), so the report's limitations say it from the history instead of in typed-in words."""
    late = [h for h in history.get("entries", []) if h.get("timing") == "changed after results"]
    claims = {int(c) for h in late for c in re.findall(r"\bC(\d+)\b", h["claim"])}
    return len(late), [f"C{c}" for c in sorted(claims)]


def rules_commit(history: dict) -> str:
    """The commit and date of the newest rule registration in the history (what the report says its rules are)."""
    entries = history.get("entries", [])
    if not entries:
        return "unknown"
    last = max(entries, key=lambda h: h["date"])
    return f"{last['commit']} ({last['date'][:10]})"
