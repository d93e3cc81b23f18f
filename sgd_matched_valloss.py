"""Table 5 (PROTOCOL A12): the controls compared at matched validation loss. The target defaults to the final val
loss of momentum SGD (run C), as the protocol states. For every optimizer: the first eval checkpoint whose val loss
lies within the tolerance of the target (the moment the run reaches it), or the closest one when none does (said
plainly, as for AdamW in the paper), the first pair of evals that brackets the target, and the trunk window geometry (row-normalized PC1 %, k95,
k99, drift) of the paper's listed windows (scaled) and of windows centred on the matched checkpoint.

Writes <root>/analysis/sgd_matched_valloss.json and .csv.

Examples:
    python sgd_matched_valloss.py runs/ctrl_s42
    python sgd_matched_valloss.py runs/ctrl_s42 --target 5.1 --rel-tol 0.05
"""
import sys
from pathlib import Path

from drift import cli
from drift.run.checkpoint import RunError, list_steps
from drift.config import ConfigError
from drift.analysis.matched import matched_table
from drift.analysis.table_csv import write_csv
from drift.run.info import add_check_args, analysis_dir, run_block, write_analysis

COLUMNS = ["run", "optimizer", "target", "matched_step", "matched_val", "within_tol", "window", "kind",
           "first_step", "last_step", "n_steps", "pc1", "pc1_top10", "k95", "k99", "drift", "note",
           "paper_pc1", "paper_k95", "paper_k99", "paper_drift"]


def csv_rows(results: dict) -> list[dict]:
    """One CSV row per (optimizer, window)."""
    out = []
    for row in results["rows"]:
        m = row["match"]
        for w in row["windows"]:
            g, steps = w["geometry"], w["geometry"].get("window_steps") or []
            out.append({"run": row["run"], "optimizer": row["optimizer"], "target": results["target"],
                        "matched_step": m["step"], "matched_val": m["val_loss"], "within_tol": m["within_tol"],
                        "window": w["window"], "kind": w["kind"], "first_step": steps[0] if steps else None,
                        "last_step": steps[-1] if steps else None, "n_steps": len(steps),
                        **{k: g.get(k) for k in ("pc1", "pc1_top10", "k95", "k99", "drift", "note")},
                        **{f"paper_{k}": v for k, v in (w["paper"] or {}).items()}})
    return out


PROG = "sgd_matched_valloss.py"


def main(argv=None) -> int:
    parser = cli.parser(PROG, __doc__)
    parser.add_argument("root", type=cli.path("a directory"),
                        help="directory holding the control runs A, B, C, C_prime")
    parser.add_argument("--target", type=cli.number(0, None, "a validation loss, e.g. 5.1", lo_open=True),
                        default=None,
                        help="val loss to match (default: the final val loss of run C)")
    parser.add_argument("--rel-tol", type=cli.number(0, 1, "a fraction of the target, e.g. 0.02"), default=0.02,
                        help="a checkpoint matches if |val - target| <= rel_tol * target (default 0.02)")
    add_check_args(parser)
    args = cli.parse(parser, argv)
    try:
        results = matched_table(args.root, args.target, args.rel_tol, args.allow_missing, args.allow_running)
    except (ConfigError, RunError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    root = Path(args.root)
    path = write_analysis(root, "sgd_matched_valloss", results,
                          params={"target": results["target"], "rel_tol": args.rel_tol, "scope": "trunk"},
                          inputs={r["run"]: str(root / r["run"]) for r in results["rows"]},
                          run={r["run"]: run_block(root / r["run"], list_steps(root / r["run"]))
                               for r in results["rows"]})
    rows = csv_rows(results)
    write_csv(analysis_dir(root) / "sgd_matched_valloss.csv", rows, COLUMNS)
    print(f"target val loss {results['target']:.3f} (tolerance {args.rel_tol:.0%})")
    for r in results["rows"]:
        m = r["match"]
        val = float("nan") if m["val_loss"] is None else m["val_loss"]
        print(f"{r['run']:8s} nearest eval: step {m['step']} val {val:.3f}"
              + (f"  [{r['note']}]" if r["note"] else "  (within tolerance)"))
    for r in rows:
        geo = r["note"] or f"PC1 {r['pc1']:.1f}% k95 {r['k95']} k99 {r['k99']} drift {r['drift']:.3g}"
        print(f"  {r['run']:8s} {r['window']:18s} {r['first_step']}..{r['last_step']}: {geo}")
    print(f"sgd_matched_valloss.py: wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, PROG))
