"""Two reports' verdicts side by side, claim by claim: what changed when the report moved to other runs (or other
rules). Each report is given by its sources.txt (drift/report/tables.py), so the comparison reads exactly the
directories each report was built from."""
from __future__ import annotations

from pathlib import Path

from drift.report.claims import evaluate_claims
from drift.report.evidence import annotate, claim_evidence
from drift.report.inputs import Evidence, load_evidence
from drift.report.tables import read_sources
from drift.report.variants import evaluate_variants

# What one report says about a claim: the checklist label (held / held, not diagnostic / not held / not measured),
# the verdict over seeds against the nulls, and the sharp rule's verdict where the label is "not diagnostic".
FIELDS = ("label", "seed_verdict", "sharp")


def load_sources(path) -> Evidence:
    src = read_sources(path)
    return load_evidence(src["runs"], src["controls"] or None, src["beta2"] or None)


def verdicts(ev: Evidence) -> dict[str, dict]:
    """{claim id: {label, seed_verdict, sharp, ours}} of one report; each de-confounded variant (report/variants.py)
    as "<claim> (<variant>)" with its verdict as the label."""
    rows = annotate(evaluate_claims(ev), claim_evidence(ev))
    out = {r["id"]: {**{f: r[f] for f in FIELDS}, "ours": r["ours"]} for r in rows}
    for v in evaluate_variants(ev):
        out[f"{v['id']} ({v['variant']})"] = {"label": v["verdict"], "seed_verdict": "", "sharp": "", "ours": v["ours"]}
    return out


def _order(claim: str) -> tuple:
    number, _, variant = claim[1:].partition(" ")
    return int(number), variant


def compare(old: dict[str, dict], new: dict[str, dict]) -> list[dict]:
    """One row per claim of either report, in claim order: both reports' fields and whether any of them changed."""
    ids = sorted(set(old) | set(new), key=_order)
    rows = []
    for c in ids:
        o, n = old.get(c, {}), new.get(c, {})
        rows.append({"id": c, "old": o, "new": n, "changed": any(o.get(f) != n.get(f) for f in FIELDS)})
    return rows


def _cell(v: dict) -> str:
    if not v:
        return "absent"
    s = v["label"]
    if v["seed_verdict"]:
        s += f"; over seeds: {v['seed_verdict']}"
    if v["sharp"]:
        s += f"; sharp rule: {v['sharp']}"
    return s


def markdown(rows: list[dict], old_name: str, new_name: str) -> str:
    """A markdown table, changed claims marked with *."""
    out = [f"| claim | {old_name} | {new_name} |", "|---|---|---|"]
    for r in rows:
        out.append(f"| {r['id']}{' *' if r['changed'] else ''} | {_cell(r['old'])} | {_cell(r['new'])} |")
    n = sum(r["changed"] for r in rows)
    out.append(f"\n{n} of {len(rows)} claims changed (*).")
    return "\n".join(out) + "\n"


def compare_sources(old_path, new_path) -> list[dict]:
    return compare(verdicts(load_sources(Path(old_path))), verdicts(load_sources(Path(new_path))))
