"""Draw the paper's figures from analysis JSON only (never from checkpoints), as PDF and PNG.

    fig1_backbone_residual  Fig 1: a(t), ||r(t)|| of block 0 with p_ood, the lambda switch   trajectory_pca.json
    fig2_alignment          Fig 2: update and gradient |cos| with v_b, noise floors          gradient_alignment.json
    fig3_fisher             Fig 3: Fisher quotients q(v) (log) and the anisotropy alpha      fisher.json
    fig4_reheat             Fig 4: training p_ood, then the reheating curves (optional)      reheat.json
    fig_beta2               beta2 sweep (optional)                          <beta2>/analysis/beta2_sweep.json
    fig_sgd_control         optimizer controls (optional)                   <controls>/analysis/sgd_control.json
    fig_nulls_spectrum      spectrum vs null bands (optional)               nulls.json (trajectory_nulls.py)

With several runs (seeds), each seed is a column. Without --runs, the runs that exist among runs/paper_s42,
runs/paper_s271 (else runs/cpu_s42, runs/cpu_s271) are used. Without --controls / --beta2, runs/ctrl_s42 and
runs/beta2_s42 are used when they exist and hold runs of the same model and data as the main runs.
A missing input of Figs 1-3 stops the script with the analysis command to run (exit 2). The optional experiments
(reheating, beta2, controls) are skipped with a note when absent, unless asked for with --only, --controls or
--beta2.

Examples:
    python make_paper_figures.py
    python make_paper_figures.py --runs runs/cpu_s42 runs/cpu_s271 --controls runs/ctrl_s42 --beta2 runs/beta2_s42
    python make_paper_figures.py --runs runs/cpu_s42 --only fig1 fig2 --out runs/cpu_s42/figures/paper
"""
from __future__ import annotations

import sys
from pathlib import Path

from drift import cli
from drift.run.checkpoint import RunError
from drift.report.inputs import Evidence, add_evidence_args, default_inputs, load_evidence
from drift.config import ConfigError
from drift.report.figures import FIGURES, missing_inputs
from drift.report.plotting import figure_paths, save_figure

PROG = "make_paper_figures.py"


def parse_args(argv):
    p = cli.parser(PROG, __doc__)
    add_evidence_args(p, "paper/figures")
    p.add_argument("--only", nargs="+", choices=sorted(FIGURES), default=None,
                   help="draw only these figures (each then becomes required)")
    return cli.parse(p, argv)


def gather(args) -> Evidence:
    runs, controls, beta2 = default_inputs(args.runs)
    if not runs:
        raise RunError("no main run given or found (runs/cpu_s42, runs/cpu_s271, ...); train one with "
                       "`./run_seed.sh 42` or pass --runs RUN_DIR")
    return load_evidence(runs, args.controls or controls, args.beta2 or beta2)


def plan(ev: Evidence, args) -> tuple[list[str], list[str]]:
    """(figure keys to draw, notes on skipped ones); raises RunError naming what to run for a required input."""
    keys = args.only or list(FIGURES)
    required = set(args.only or [])
    required |= {"sgd"} if args.controls else set()
    required |= {"beta2"} if args.beta2 else set()
    draw, notes, errors = [], [], []
    for key in keys:
        spec = FIGURES[key]
        missing = missing_inputs(ev, spec)
        if not missing:
            draw.append(key)
        elif spec.optional and key not in required:
            notes.append(f"skipped {spec.name}: {missing[0]}")
        else:
            errors.extend(missing)
    if errors:
        raise RunError("; ".join(dict.fromkeys(errors)))
    return draw, notes


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        ev = gather(args)
        draw, notes = plan(ev, args)
        written = []
        for key in draw:
            spec = FIGURES[key]
            written += save_figure(spec.draw(ev), Path(args.out) / spec.name)
    except (RunError, ConfigError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    # A skipped figure's file from an earlier build would show other runs' results beside these (the report
    # includes any figure file it finds), so it is removed.
    for key in (k for k in (args.only or FIGURES) if k not in draw):
        for stale in figure_paths(Path(args.out) / FIGURES[key].name):
            if stale.exists():
                stale.unlink()
                notes.append(f"removed {stale} (from an earlier build; its input is absent now)")
    for note in notes:
        print(f"{PROG}: note: {note}")
    print(f"{PROG}: wrote {len(written)} files to {args.out} "
          f"({', '.join(FIGURES[k].name for k in draw)}) from {', '.join(str(r.run_dir) for r in ev.runs)}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, PROG))
