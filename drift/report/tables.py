"""LaTeX tables for the report, generated from run.json and analysis JSON only (PROTOCOL section 6): the setup table
here, the others by family (trajectory_tables, mechanism_tables, control_tables, claims_tables; shared cells in
table_cells), and write_report, which writes them all.

`write_report(evidence, out_dir)` writes paper/generated/*.tex: one file per table (each a complete `table` float
with caption and label, or a short "not run" table naming the script to run), `macros.tex` (every number the prose
quotes) and `claims.tex` (the checklist with verdicts, from drift.report.claims). Each table puts the paper's value
beside ours; with two seeds a cell reads "s42 / s271" (the paper's own convention), with more it reads mean +-
half-range.

    from drift.report.inputs import load_evidence
    from drift.report.tables import write_report
    write_report(load_evidence(["runs/cpu_s42"], controls="runs/ctrl_s42"), "paper/generated")
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

from drift.config import Config, resolve
from drift.report.claims import evaluate_claims
from drift.report.claims_md import claims_markdown
from drift.report.claims_tables import claims_table, macro, macros
from drift.report.control_tables import beta2_table, reheat_table, table4, table5
from drift.report.evidence import annotate, claim_evidence
from drift.report.evidence_tables import (changes_after_results, evidence_table, load_rule_history,
                                         rule_history_table, rules_commit, variants_table)
from drift.report.variants import evaluate_variants
from drift.report.inputs import Evidence
from drift.report.latex import esc, not_run, table, write_text
from drift.report.mechanism_tables import alignment_table, fisher_table
from drift.report.table_cells import PAPER_N_PARAMS, infer_preset, seeds_header
from drift.report.trajectory_tables import (blocks_table, correlation_table, gamma_table, phase_table, rolling_table,
                                            switching_table, trunk_table)
from drift.run.info import status_text
from drift.run.params import trunk_size

# ---------------------------------------------------------------------------------------------------------------
# Setup (from run.json)
# ---------------------------------------------------------------------------------------------------------------

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
    variants = evaluate_variants(ev)
    written.append(write_text(out_dir / "variants.tex", variants_table(variants)))
    written.append(write_text(out_dir / "rule_history.tex", rule_history_table(history)))
    n_late, late_claims = changes_after_results(history)
    rule_macros = (macro("RulesCommit", esc(rules_commit(history))) + macro("NRuleChangesAfterResults", str(n_late))
                   + macro("RuleChangesAfterResultsClaims", esc(", ".join(late_claims) or "none")))
    written.append(write_text(out_dir / "macros.tex", macros(ev, rows) + rule_macros))
    written.append(write_text(out_dir / "claims.md", claims_markdown(rows, variants)))
    written.append(write_text(out_dir / SOURCES, sources_text(ev)))
    return written, rows


SOURCES = "sources.txt"
_REPO = Path(__file__).resolve().parents[2]


def _shown(d) -> str:
    """A directory inside the repository by its path from the repository's root (so the committed list reads the
    same on every clone), any other by its absolute path."""
    d = Path(d).resolve()
    return d.relative_to(_REPO).as_posix() if d.is_relative_to(_REPO) else d.as_posix()


def sources_text(ev: Evidence) -> str:
    """Which directories the report was built from, one `<option> <directory>` line each, in the order make_report.py
    takes them: tests/test_evidence.py rebuilds the committed report from exactly these."""
    lines = [f"runs {_shown(r.run_dir)}" for r in ev.runs]
    lines += [f"controls {_shown(v.controls_dir)}" for v in ev.sets("controls") if v.controls_dir is not None]
    lines += [f"beta2 {_shown(v.beta2_dir)}" for v in ev.sets("beta2") if v.beta2_dir is not None]
    return "\n".join(lines) + "\n"


def read_sources(path) -> dict[str, list[Path]]:
    """sources.txt back into make_report.py's inputs: {"runs": [...], "controls": [...], "beta2": [...]}, relative
    paths taken from the repository's root."""
    out: dict[str, list[Path]] = {"runs": [], "controls": [], "beta2": []}
    for line in Path(path).read_text().splitlines():
        option, _, d = line.partition(" ")
        if option not in out or not d:
            raise ValueError(f"{path}: line {line!r} is not '<runs|controls|beta2> DIRECTORY'")
        out[option].append(_REPO / d if not Path(d).is_absolute() else Path(d))
    return out
