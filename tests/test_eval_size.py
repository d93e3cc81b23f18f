"""Eval-set size: the same drop is significant on a large set and not on a small one; real checkpoints are scored."""
import json

import numpy as np

from drift.studies import eval_size as es
from experiments import eval_size as script


def _scored(curves):
    steps = list(range(1, len(next(iter(curves.values()))) + 1))
    return {"steps": steps, "p_ood": {str(n): list(c) for n, c in curves.items()}}


def test_a_drop_is_significant_only_where_the_set_is_large_enough():
    # a 0.06 fall from 0.8: 3 binomial std is 0.075 at n = 256 and 0.019 at n = 4096
    curve = [0.1, 0.5, 0.8, 0.74, 0.85, 0.8]
    noisy = [0.12, 0.48, 0.8, 0.74, 0.85, 0.81]
    out = es.summarize_sizes(_scored({256: noisy, 4096: curve}))
    by_n = {r["n"]: r for r in out["sizes"]}
    assert by_n[256]["significant_drops"] == [] and by_n[4096]["significant_drops"] == [0.06]
    assert by_n[256]["rms_vs_largest"] == np.sqrt(np.mean(np.square(np.subtract(noisy, curve))))
    assert by_n[4096]["rms_vs_largest"] == 0.0
    assert "| 256 | 0.031 |" in es.table_markdown(out) and "| 4096 | 0.008 |" in es.table_markdown(out)


def test_every_checkpoint_of_a_real_run_is_scored_on_independent_sets(tiny_run, tmp_path, restore_torch_threads):
    assert script.main([str(tiny_run), "--sizes", "8", "32", "--out", str(tmp_path), "--no-progress"]) == 0
    out = json.loads((tmp_path / f"eval_size_{tiny_run.name}.json").read_text())
    assert out["steps"] == [1, 5, 10, 15, 20, 25, 30]
    for n in ("8", "32"):
        p = np.asarray(out["p_ood"][n])
        assert p.shape == (7,) and ((p >= 0) & (p <= 1)).all()
        assert np.allclose(p * int(n), np.round(p * int(n)))  # a fraction of n examples
    assert (tmp_path / f"eval_size_{tiny_run.name}.png").exists()


def test_a_run_without_checkpoints_is_refused_in_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert script.main([str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("eval_size: error:") and "\n" not in err
