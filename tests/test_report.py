"""Tests for the paper figures and the LaTeX report (drift/report/figures.py, drift/report/tables.py,
make_paper_figures.py, make_report.py); the claims checklist's rules and readers are in tests/test_claims.py.

Known answers: the seed-spread and number formatting, the tables and figures on crafted JSON
(tests/helpers/crafted.py), and, on
a copy of the tiny run with its trajectory and mechanism analyses, the figure script's files, every generated
table, and a verdict for each of C1-C22. A slow test compiles the PDF when latexmk is installed.

Run: pytest tests/test_report.py          (add -m slow for the LaTeX build)
"""
from __future__ import annotations

import copy
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from drift.report import claims as cl, inputs as inp, readers as rd
from drift.report import latex, table_cells
from drift.report import tables as rp
from drift.config import resolve
from helpers.crafted import crafted_evidence, verdicts

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------------------------
# Formatting
# ---------------------------------------------------------------------------------------------------------------

def test_spread_reads_like_the_paper_for_two_seeds_and_mean_half_range_beyond():
    assert latex.spread([71.4, 71.7], 3) == "71.4 / 71.7"
    assert latex.spread([1.0, 2.0, 3.0], 3) == r"2 $\pm$ 1"
    assert latex.spread([None, 0.5]) == "n/a / 0.5"


def test_numbers_and_text_are_latex_safe():
    assert latex.num(None) == "n/a" and latex.num(float("nan")) == "n/a"
    assert latex.num(2.4e-6) == r"$2.4\times10^{-6}$"
    assert latex.num(211694.0) == r"$2.12\times10^{5}$"
    assert latex.num(113.7) == "113.7"
    # "_" and "/" allow a line break after them (long statistic names and paths overflowed table cells)
    assert latex.esc("k95 & 50% of d_model #1") == r"k95 \& 50\% of d\_\allowbreak{}model \#1"
    assert latex.esc("a/b") == r"a/\allowbreak{}b"


def test_infer_preset_names_the_preset_and_lists_overrides():
    assert table_cells.infer_preset(resolve("cpu", 42)) == "cpu"
    assert table_cells.infer_preset(resolve("cpu", 271, ["total_steps=500"])) == "cpu + total_steps=500"


# ---------------------------------------------------------------------------------------------------------------
# Claim readers, tables and figures on crafted JSON (layouts as drift.analysis.control_tables writes them)
# ---------------------------------------------------------------------------------------------------------------

def test_tables_on_crafted_json_show_paper_beside_ours(tmp_path):
    paths, rows = rp.write_report(crafted_evidence(True), tmp_path)
    names = {p.stem for p in paths}
    assert set(rp.TABLES) | {"claims", "macros"} <= names
    t4 = (tmp_path / "table4.tex").read_text()
    assert r"61.5 {\color{gray}(61.5)}" in t4 and r"\begin{table}" in t4
    assert "not run" in (tmp_path / "fisher.tex").read_text()
    assert r"{\color{gray}(0.782)}" in (tmp_path / "reheat.tex").read_text()
    beta2 = (tmp_path / "beta2.tex").read_text()
    assert r"68.8 {\color{gray}(68.8)}" in beta2
    macros = (tmp_path / "macros.tex").read_text()
    assert r"\newcommand{\RunPreset}{cpu}" in macros and r"\newcommand{\NClaims}{22}" in macros
    # one checklist row per claim, "Cn [tag] & ...", whose verdict cell is the planted verdict
    lines = {line.split(" [")[0]: line for line in (tmp_path / "claims.tex").read_text().splitlines()
             if re.match(r"C\d+ \[", line)}
    assert list(lines) == [c.id for c in cl.CLAIMS] and lines["C22"].startswith("C22 [S] &")
    for cid, mark in (("C1", r"& \textbf{held} &"), ("C17", r"& \textbf{held} &"), ("C2", r"& \emph{not measured} &")):
        assert mark in lines[cid], (cid, lines[cid])
    rp.write_report(crafted_evidence(False), tmp_path / "bad")
    bad = (tmp_path / "bad" / "claims.tex").read_text()
    assert r"& \textbf{not held} &" in next(line for line in bad.splitlines() if line.startswith("C15 ["))


def test_tables_show_every_control_set_and_sweep_with_its_own_values(tmp_path):
    """Two sets per kind (seeds 42 and 137) with planted values that differ: Table 4 and the beta2 table carry a
    set column and each set's own numbers; Table 5 shows the first set and says so. One set keeps the old layout."""
    ev = crafted_evidence(True)
    one = {name: getattr(rp, name)(ev) for name in ("table4", "beta2_table")}
    second = crafted_evidence(True)
    second.controls_dir, second.beta2_dir = Path("runs/ctrl_s137"), Path("runs/beta2_s137")
    second.controls["sgd_control"]["rows"][0]["final_val"] = 4.321         # run A
    second.beta2["rows"][4].update(marker="diverged at step 99", best_p_ood=0.0123)   # beta2 = 0
    ev.control_views, ev.beta2_views = [ev, second], [ev, second]
    t4, b2, t5 = rp.table4(ev), rp.beta2_table(ev), rp.table5(ev)
    assert r"set & run & optimizer" in t4 and t4.count(r"ctrl\_\allowbreak{}s137 & ") == 3   # A, B, C
    a_rows = [line for line in t4.splitlines() if "& A & A &" in line]
    assert a_rows[0].startswith(r"ctrl\_\allowbreak{}s42") and "4.32" not in a_rows[0]
    assert a_rows[1].startswith(r"ctrl\_\allowbreak{}s137") and "4.32" in a_rows[1]
    assert b2.count(r"beta2\_\allowbreak{}s137 & ") == 5 and "0.0123" in b2
    assert r"beta2\_\allowbreak{}s137 0 (0.1) diverged at step 99" in b2
    assert "Shown for ctrl" in t5 and "the first of 2 sets by seed" in t5
    assert "Shown for" not in rp.table5(crafted_evidence(True))
    # a set whose analysis is missing keeps its row, saying what to run
    second.controls["sgd_control"], second.beta2 = None, None
    t4, b2 = rp.table4(ev), rp.beta2_table(ev)
    lead = r" & \multicolumn{11}{l}{\emph{not run}: "
    assert r"ctrl\_\allowbreak{}s137" + lead in t4 and "control" in t4.split(r"s137" + lead)[1].splitlines()[0]
    assert r"beta2\_\allowbreak{}s137" + lead in b2 and "sweep" in b2.split(r"s137" + lead)[1].splitlines()[0]
    # one set: no set column, the same text as before the column existed
    assert "set & " not in one["table4"] and one["table4"].count(r"\begin{tabular}{lllllllllll}") == 1
    assert "set & " not in one["beta2_table"]


def test_optional_figures_draw_from_crafted_json():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from drift.report.figures import FIGURES
    ev = crafted_evidence(True)
    labels = {}
    for key in ("fig4", "beta2", "sgd"):
        fig = FIGURES[key].draw(ev)
        FigureCanvasAgg(fig).draw()  # lays out every artist, as saving would
        labels[key] = [[l.get_label() for l in ax.get_lines() if not l.get_label().startswith("_")] for ax in fig.axes]
    # one curve per crafted run: the training run and the three reheating LRs; A, B, C; the five beta2 runs
    assert labels["fig4"][0] == ["training", "reheat lr 0.001", "reheat lr 0.0006", "reheat lr 0.0003"]
    assert labels["sgd"][0] == ["A", "B", "C"]
    assert labels["beta2"][2] == [f"beta2 {b} (p_probe 0.1)" for b in ("0.99", "0.95", "0.9", "0.8", "0")]
    stars = [l for ax in FIGURES["fig4"].draw(ev).axes for l in ax.get_lines() if l.get_marker() == "*"]
    assert len(stars) == 3  # one peak per reheating LR



def test_many_seed_figures_label_shared_axes_once():
    """Five columns: Fig 1's p_ood axis is labelled on the last column only and its left axes on the first; the
    null spectrum's titles drop the draw count and its legend moves under the figure. Two columns keep both."""
    import numpy as np
    from drift.report.figures import figure_backbone_residual, figure_null_spectrum
    steps = np.arange(0, 100, 10.0)
    col = {"scope": "block0", "steps": steps, "a": steps, "residual_norm": steps + 1, "p_ood_steps": steps,
           "p_ood": steps / 100, "switch_step": 40}
    fig = figure_backbone_residual([{**col, "title": f"seed {s}"} for s in range(5)])
    main_axes = [ax for ax in fig.axes if ax.get_title() or ax.get_xlabel()]
    twins = [ax for ax in fig.axes if ax not in main_axes]
    assert len(main_axes) == 10 and len(twins) == 10
    assert [ax.get_ylabel() for ax in twins].count("$p_{ood}$") == 2  # top and bottom of the last column
    assert sum(bool(ax.get_ylabel()) for ax in main_axes) == 2
    spec = {k: {"observed": [0.8, 0.1, 0.05], **{n: {"lo": [0.7] * 3, "hi": [0.9] * 3, "median": [0.8] * 3}
                                                   for n in ("N1",)}} for k in ("trunk_rownorm", "block0_raw")}
    res = {"spectra": spec, "nulls": {"N1": {"name": "matched random walk"}}}
    five = figure_null_spectrum([res] * 5, [f"seed {s}" for s in range(5)])
    assert len(five.legends) == 1 and all(ax.get_legend() is None for ax in five.axes)
    two = figure_null_spectrum([res] * 2, ["a", "b"])
    assert not two.legends and two.axes[0].get_legend() is not None


def test_beta2_figure_shares_one_decreasing_beta2_axis_across_p_probe_groups():
    from drift.report.figures import FIGURES
    ev = crafted_evidence(True)
    pair = [dict(r, p_probe=0.05, name=r["name"] + "_p0.05") for r in ev.beta2["rows"] if r["beta2"] in (0.95, 0.0)]
    ev.beta2["rows"] = pair + ev.beta2["rows"]            # the pair first, as its runs sort before the sweep
    ax_g = FIGURES["beta2"].draw(ev).axes[0]
    assert [t.get_text() for t in ax_g.get_xticklabels()] == ["0.99", "0.95", "0.9", "0.8", "0"]
    pair_pc1 = next(l for l in ax_g.get_lines() if l.get_label() == "row-norm PC1 (p_probe 0.05)")
    assert list(pair_pc1.get_xdata()) == [1, 4]               # 0.95 and 0 sit where the full sweep puts them

# ---------------------------------------------------------------------------------------------------------------
# End to end on a copy of the tiny run
# ---------------------------------------------------------------------------------------------------------------

def analyse(run_dir: Path) -> None:
    """The trajectory and mechanism analyses, cut to a few checkpoints and batches so they take seconds."""
    import backbone_fisher_analysis
    import backbone_gradient_analysis
    import backbone_update_analysis
    import trajectory_pca_uncentered
    assert trajectory_pca_uncentered.main([str(run_dir), "--no-figures"]) == 0
    assert backbone_update_analysis.main([str(run_dir)]) == 0
    assert backbone_gradient_analysis.main([str(run_dir), "--steps", "1", "30", "--n-batches", "2",
                                            "--n-random", "4", "--no-progress"]) == 0
    assert backbone_fisher_analysis.main([str(run_dir), "--steps", "5", "30", "--m", "4", "--k", "2",
                                          "--no-progress"]) == 0


def test_pipeline_on_the_tiny_run(tiny_run_copy, tmp_path, capsys):
    import make_paper_figures
    import make_report
    analyse(tiny_run_copy)
    figs = tmp_path / "figures"
    figs.mkdir()
    for ext in (".pdf", ".png"):  # an earlier build's reheating figure, from runs that are not these
        (figs / f"fig4_reheat{ext}").write_bytes(b"stale")
    assert make_paper_figures.main(["--runs", str(tiny_run_copy), "--out", str(figs)]) == 0
    out = capsys.readouterr().out
    assert not list(figs.glob("fig4_reheat.*")) and "removed" in out
    for name in ("fig1_backbone_residual", "fig2_alignment", "fig3_fisher"):
        for ext, magic in ((".pdf", b"%PDF-"), (".png", b"\x89PNG\r\n\x1a\n")):
            assert (figs / f"{name}{ext}").read_bytes().startswith(magic), name + ext
    assert "skipped fig4_reheat" in out  # optional experiment not run: a note, not a failure

    gen = tmp_path / "generated"
    assert make_report.main(["--runs", str(tiny_run_copy), "--out", str(gen), "--quiet"]) == 0
    for name in list(rp.TABLES) + ["claims"]:
        assert re.search(r"\\begin\{(long)?table\}", (gen / f"{name}.tex").read_text()), name
    assert r"\newcommand{\NClaims}{22}" in (gen / "macros.tex").read_text()
    assert "not run" in (gen / "table4.tex").read_text()          # no controls given
    blocks = (gen / "table2_blocks.tex").read_text()
    assert "80.5 / 78.6" in blocks and "not run" not in blocks       # paper beside ours, from the JSON

    ev = inp.load_evidence([tiny_run_copy])
    _tiny_run_verdicts(ev)
    _planted_verdicts(ev)


# Why each claim cannot be measured on one 30-step tiny run (6 drift rows, W = 10 windows, p_ood flat at 0, no
# nulls, controls, sweep, reheating or second seed): a phrase of the reason each must give.
TINY_NOT_MEASURED = {
    "C4": "fewer than 11 drift rows", "C6": "fewer than 11 checkpoints", "C7": "nulls.json absent",
    "C8": "no rolling windows", "C9": "fewer than 3 checkpoints", "C10": "correlation undefined",
    "C14": "beta2 sweep not given", "C15": "optimizer controls not given", "C16": "optimizer controls not given",
    "C17": "beta2 sweep not given", "C18": "beta2 sweep not given", "C19": "beta2 sweep not given",
    "C20": "reheat.json absent", "C21": "no p_ood peak", "C22": "needs at least two seeds"}


def _tiny_run_verdicts(ev: inp.Evidence) -> None:
    """The tiny run's verdicts: the claims it cannot measure say why, and each measured verdict is the one the
    pre-declared rule gives on the numbers in its JSON (thresholds written out here, as in PROTOCOL section 6)."""
    rows = verdicts(ev)
    assert list(rows) == [f"C{i}" for i in range(1, 23)]
    for cid, why in TINY_NOT_MEASURED.items():
        assert rows[cid]["verdict"] == rd.NOT_MEASURED and why in rows[cid]["reason"], (cid, rows[cid])
    run = ev.runs[0]
    traj, upd = run.results("trajectory_pca"), run.results("update_alignment")
    grad, fis = run.results("gradient_alignment")["summary"], run.results("fisher")
    t, u = traj["trunk"], upd["scopes"]["block0+ln"]["raw"]["consecutive_summary"]
    p_ood = [m["p_ood"] for m in run.metrics if "p_ood" in m]
    floor = run.results("gradient_alignment")["floors"]["abs_cos_mean_asymptotic"]
    q, alpha = fis["summary"]["q_b"], fis["summary"]["alpha"]
    flip = u["flip_end_step"]
    expected = {
        "C1": max(p_ood) - min(p_ood) >= 0.03,     # no drop can pass the 0.03 prominence rule otherwise
        "C2": all(x >= 0.5 for x in traj["blocks"]["pc1"]["block"]),
        "C3": t["pc1_raw_full"] > t["pc1_rownorm_full"] >= 3 * t["pc2_rownorm_full"],
        "C5": t["f_b_final"] >= 0.5,
        "C11": flip is not None and flip >= 12 and u["mean_abs_cos_after_flip"] < u["mean_abs_cos_before_flip"],
        "C12": (grad["update_mean_abs_cos"] >= 10 * grad["grad_mean_abs_cos"]
                and grad["grad_mean_abs_cos"] <= 5 * floor),
        "C13": (q[-1] / q[0] >= 10 and max(alpha) > 1 and fis["summary"]["steps"][int(np.argmax(alpha))] >= 12
                and max(fis["summary"]["u1_overlap_v_b"]) < 0.9)}
    assert {cid: r["verdict"] for cid, r in rows.items() if cid not in TINY_NOT_MEASURED} == \
        {cid: rd.HELD if held else rd.NOT_HELD for cid, held in expected.items()}


def _planted_verdicts(ev: inp.Evidence) -> None:
    """The same JSON with one number moved onto, then just across, a claim's threshold: the verdict follows."""
    def verdict(cid: str, **edits) -> str:
        planted = copy.deepcopy(ev)
        res = planted.runs[0].analyses
        for path, value in edits.items():            # "trajectory_pca__trunk__f_b_final" = res[...][...][...]
            *keys, last = path.split("__")
            node = res
            for k in keys:
                node = node[k]
            node[last] = value
        return verdicts(planted)[cid]["verdict"]

    f_b, pc = "trajectory_pca__trunk__f_b_final", "trajectory_pca__trunk__pc1_"
    assert (verdict("C5", **{f_b: 0.5}), verdict("C5", **{f_b: 0.4999})) == (rd.HELD, rd.NOT_HELD)
    c3 = {pc + "rownorm_full": 0.375, "trajectory_pca__trunk__pc2_rownorm_full": 0.125, pc + "raw_full": 0.5}
    assert verdict("C3", **c3) == rd.HELD
    assert verdict("C3", **{**c3, "trajectory_pca__trunk__pc2_rownorm_full": 0.1250001}) == rd.NOT_HELD
    assert verdict("C3", **{**c3, pc + "raw_full": 0.375}) == rd.NOT_HELD
    assert verdict("C2", trajectory_pca__blocks__pc1={"block": [0.5, 0.9], "block+ln": [0.1, 0.1]}) == rd.HELD
    assert verdict("C2", trajectory_pca__blocks__pc1={"block": [0.4999, 0.9], "block+ln": [0.9, 0.9]}) == rd.NOT_HELD
    s = "gradient_alignment__summary__"
    floor = ev.runs[0].results("gradient_alignment")["floors"]["abs_cos_mean_asymptotic"]
    g = 5 * floor                                   # the gradient exactly at 5x the sqrt(2/(pi D)) floor
    c12 = {s + "grad_mean_abs_cos": g, s + "update_mean_abs_cos": 10 * g}
    assert verdict("C12", **c12) == rd.HELD
    assert verdict("C12", **{**c12, s + "update_mean_abs_cos": 10 * g * (1 - 1e-12)}) == rd.NOT_HELD
    assert verdict("C12", **{s + "grad_mean_abs_cos": g * (1 + 1e-12), s + "update_mean_abs_cos": 20 * g}) == \
        rd.NOT_HELD
    u = "update_alignment__scopes__block0+ln__raw__consecutive_summary__"
    c11 = {u + "flip_end_step": 12.0, u + "mean_abs_cos_before_flip": 0.3, u + "mean_abs_cos_after_flip": 0.1}
    assert verdict("C11", **c11) == rd.HELD                                   # the switch is at step 12
    assert verdict("C11", **{**c11, u + "flip_end_step": 11.0}) == rd.NOT_HELD
    f = "fisher__summary__"
    c13 = {f + "q_b": [1.0, 10.0], f + "alpha": [0.5, 1.5], f + "steps": [5, 30], f + "u1_overlap_v_b": [0.1, 0.5]}
    assert verdict("C13", **c13) == rd.HELD
    assert verdict("C13", **{**c13, f + "q_b": [1.0, 9.99]}) == rd.NOT_HELD


def test_missing_analysis_names_the_script_and_exits_2(tiny_run, tmp_path, capsys):
    import make_paper_figures
    assert make_paper_figures.main(["--runs", str(tiny_run), "--out", str(tmp_path), "--only", "fig1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "python trajectory_pca_uncentered.py" in err
    assert not list(tmp_path.iterdir())
    assert make_paper_figures.main(["--runs", "--out", str(tmp_path)]) == 2  # an empty run list: no defaults
    assert "no main run given" in capsys.readouterr().err


@pytest.mark.parametrize("script", ["make_paper_figures", "make_report"])
def test_scripts_have_help(script, capsys):
    module = __import__(script)
    with pytest.raises(SystemExit) as exit_info:
        module.main(["--help"])
    assert exit_info.value.code == 0 and "Examples:" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("latexmk") is None, reason="latexmk not installed")
def test_pdf_builds_from_a_tiny_run(tiny_run_copy, tmp_path):
    import make_paper_figures
    import make_report
    analyse(tiny_run_copy)
    paper = tmp_path / "paper"
    paper.mkdir()
    shutil.copy(ROOT / "paper" / "paper_backbone.tex", paper)
    assert make_paper_figures.main(["--runs", str(tiny_run_copy), "--out", str(paper / "figures")]) == 0
    assert make_report.main(["--runs", str(tiny_run_copy), "--out", str(paper / "generated"), "--quiet"]) == 0
    cmd = ["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error", "-outdir=paper/build",
           "paper/paper_backbone.tex"]
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:]
    assert (paper / "build" / "paper_backbone.pdf").stat().st_size > 20_000


def test_default_inputs_pair_controls_only_with_the_same_model(tmp_path):
    import json

    def fake_run(path: Path, preset: str):
        path.mkdir(parents=True)
        (path / "run.json").write_text(json.dumps({"config": resolve(preset, 42).to_dict()}))
    fake_run(tmp_path / "runs/cpu_s42", "cpu")
    fake_run(tmp_path / "runs/ctrl_s42/A", "cpu")
    fake_run(tmp_path / "runs/beta2_s42/b0.9", "tiny")
    runs, controls, beta2 = inp.default_inputs(root=tmp_path)
    assert runs == [tmp_path / "runs/cpu_s42"] and controls == tmp_path / "runs/ctrl_s42" and beta2 is None
    assert inp.default_inputs(root=tmp_path / "nothing_here") == ([], None, None)


def test_control_sets_and_sweeps_are_ordered_by_seed_whatever_order_they_are_named_in(tmp_path):
    """make names the sets by CONTROL_SEEDS (42 271 137), a shell glob by name (137 271 42): the report orders them
    by seed, as it does the main runs, so both give the same report; a set whose seed cannot be read goes last."""
    import json

    def a_set(name: str, seed) -> Path:
        run = tmp_path / name / "A"
        run.mkdir(parents=True)
        (run / "run.json").write_text(json.dumps({"config": {"train": {"seed": seed}}}))
        return tmp_path / name

    s42, s137, s271 = a_set("ctrl_s42", 42), a_set("ctrl_s137", 137), a_set("ctrl_s271", 271)
    unreadable = a_set("ctrl_x", "not a seed")
    empty = tmp_path / "ctrl_empty"
    empty.mkdir()
    want = [s42, s137, s271, empty, unreadable]
    assert inp._by_seed(inp._dirs([s137, unreadable, s271, empty, s42])) == want
    assert inp._by_seed(inp._dirs([str(d) for d in reversed(want)])) == want
    assert inp._by_seed(inp._dirs(s271)) == [s271] and inp._by_seed(inp._dirs(None)) == []
