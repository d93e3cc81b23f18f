"""Write the report's LaTeX tables and the claims checklist from run.json and analysis JSON only.

Writes <out>/*.tex: setup, table2_blocks, trunk_pca, rolling, gamma, correlation, alignment, fisher, table4, table5,
beta2, reheat (each a table float, "not run" with the command to run when its experiment is missing), claims.tex
(every claim C1-C22 with the paper's value, ours, its test, the verdict and, for claims with a key statistic,
the verdict over seeds against the nulls), evidence.tex (effect sizes, diagnostic rules), rule_history.tex, macros.tex (every
number the prose quotes) and sources.txt (the directories read, from which tests/test_evidence.py rebuilds the
committed report). Then prints one line per claim. paper/paper_backbone.tex \\input's these files.

Without --runs, the runs that exist among runs/paper_s42, runs/paper_s271 (else runs/cpu_s42, runs/cpu_s271) are
used. Without --controls / --beta2, runs/ctrl_s42 and runs/beta2_s42 are used when they exist, are of their kind
and hold runs of the same model and data as the main runs. Each directory must be the kind its option takes (main
runs, a controls set, a beta2 sweep; drift/run/kinds.py), else one line says which option takes it. Several control
sets or sweeps (one per seed) are judged together: a control or beta2 claim holds only if it holds in every set,
and its key statistic is tested over the sets as over seeds; the tables show the first set.

Examples:
    python make_report.py
    python make_report.py --runs runs/cpu_s42 runs/cpu_s271 --controls runs/ctrl_s42 --beta2 runs/beta2_s42
    python make_report.py --runs runs/cpu_s* --controls runs/ctrl_s42 runs/ctrl_s271 runs/ctrl_s137
    python make_report.py --runs runs/tiny_s1 --out /tmp/generated
"""
from __future__ import annotations

import sys

from drift import cli
from drift.run.checkpoint import RunError
from drift.report.inputs import add_evidence_args, check_kinds, default_inputs, load_evidence
from drift.config import ConfigError
from drift.report.tables import write_report
from drift.run.info import check_seed_set, check_sweep_matches

PROG = "make_report.py"


def main(argv=None) -> int:
    p = cli.parser(PROG, __doc__)
    add_evidence_args(p, "paper/generated")
    p.add_argument("--quiet", action="store_true", help="do not print the claims")
    args = cli.parse(p, argv)
    runs, controls, beta2 = default_inputs(args.runs)
    try:
        if not runs:
            raise RunError("no main run given or found (runs/cpu_s42, runs/cpu_s271, ...); train one with "
                           "`./run_seed.sh 42` or pass --runs RUN_DIR")
        check_kinds(runs, args.controls or controls, args.beta2 or beta2)  # each directory is what its option takes
        check_seed_set(runs)  # side-by-side seeds must share every other setting
        for option, given in (("--controls", args.controls), ("--beta2", args.beta2)):
            for d in given or ():
                check_sweep_matches(d, runs[0], option)
        ev = load_evidence(runs, args.controls or controls, args.beta2 or beta2)
        paths, claims = write_report(ev, args.out)
    except (RunError, ConfigError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    if not args.quiet:
        for c in claims:
            print(f"{c['id']:>4} {c['label']:<21} {c['seed_verdict'] or '--':<19} {c['null'] or '--':<12} "
                  f"{c['ours'] if c['ours'] != 'n/a' else c['reason']}")
    counts = {v: sum(c["verdict"] == v for c in claims) for v in ("held", "not held", "not measured")}
    summary = ", ".join(f"{n} {v}" for v, n in counts.items())
    nulls = {v: sum(c["null"] == v for c in claims) for v in ("beyond null", "within null", "no null")}
    lax = sum(c["label"] == "held, not diagnostic" for c in claims)
    beyond = sum(c["seed_verdict"].startswith("beyond") and "N1" in c["seed_verdict"] for c in claims)
    tested = sum(bool(c["seed_verdict"]) for c in claims)
    print(f"{PROG}: wrote {len(paths)} files to {args.out}; claims: {summary} ({lax} held, not diagnostic); over "
          f"seeds {beyond} of {tested} key statistics beyond N1; per-seed band rule: "
          + ", ".join(f"{n} {v}" for v, n in nulls.items()))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, PROG))
