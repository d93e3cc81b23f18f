"""python -m drift.inspect on real checkpoint formats (issue #28): a tiny Hugging Face GPT-2 trained a few steps
and saved with save_pretrained (safetensors, one checkpoint sharded; and pytorch_model.bin), a nanoGPT-style
series of ckpt_<step>.pt files, and this project's run directory. PC1 shares are checked against a dense numpy SVD
of the stacked trunk vectors; bad inputs stop with one line naming the file and leave OUT_DIR untouched."""
import json
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from drift.inspect import cli as di
from drift.inspect import formats as fm
from drift.inspect import scopes as sc

FAST = ["--draws", "20", "--no-progress"]
GPT2_TRUNK = re.compile(sc.TRUNK_PRESETS["gpt2"])


def dense_shares(states: list[dict], pattern: re.Pattern, ref: int = 0) -> dict:
    """PC1 shares from the stacked trunk vectors (float64, minus the reference, SVD): raw, row-normalized and
    raw per block."""
    def flat(state, keep):
        keys = sorted(k for k in state if (m := pattern.fullmatch(k)) and keep(int(m.group(1))))
        return np.concatenate([state[k].double().numpy().ravel() for k in keys])

    def pc1(X):
        s = np.linalg.svd(X, compute_uv=False)
        return float(s[0] ** 2 / (s ** 2).sum())

    X = np.stack([flat(s, lambda l: True) for s in states])
    D = X[ref + 1:] - X[ref]
    layers = sorted({int(m.group(1)) for k in states[0] if (m := pattern.fullmatch(k))})
    blocks = []
    for layer in layers:
        B = np.stack([flat(s, lambda l: l == layer) for s in states])
        blocks.append(pc1(B[ref + 1:] - B[ref]))
    return {"raw": pc1(D), "rownorm": pc1(D / np.linalg.norm(D, axis=1, keepdims=True)), "blocks": blocks}


def check_shares(out, expected: dict) -> dict:
    doc = json.loads((out / "trajectory.json").read_text())
    r = doc["results"]
    assert r["trunk"]["pc1_raw_full"] == pytest.approx(expected["raw"], abs=1e-10, rel=0)
    assert r["trunk"]["pc1_rownorm_full"] == pytest.approx(expected["rownorm"], abs=1e-10, rel=0)
    assert r["blocks"]["pc1"]["block"] == pytest.approx(expected["blocks"], abs=1e-10, rel=0)
    return doc


@pytest.fixture(scope="module")
def hf_run(tmp_path_factory):
    """checkpoint-0 (initialisation) .. checkpoint-12 of a 2-layer GPT-2 (n_embd 32, vocab 100) trained on random
    tokens with AdamW, saved with save_pretrained every 2 steps (checkpoint-6 sharded), as the Trainer lays
    them out (trainer_state.json with global_step). Returns (root, {step: state dict as saved})."""
    transformers = pytest.importorskip("transformers")
    transformers.logging.set_verbosity_error()
    root = tmp_path_factory.mktemp("hf_run")
    torch.manual_seed(0)
    config = transformers.GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=100, n_positions=16,
                                     bos_token_id=0, eos_token_id=0)
    model = transformers.GPT2LMHeadModel(config)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    states = {}
    for step in range(13):
        if step % 2 == 0:
            folder = root / f"checkpoint-{step}"
            model.save_pretrained(folder, max_shard_size="20KB" if step == 6 else "50GB")
            (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}))
            states[step] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        ids = torch.randint(0, 100, (4, 16))
        loss = model(input_ids=ids, labels=ids).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    return root, states


def test_hf_safetensors_series_matches_dense_svd(hf_run, tmp_path, capsys):
    root, states = hf_run
    assert len(list((root / "checkpoint-6").glob("model-*-of-*.safetensors"))) > 1  # really sharded
    out = tmp_path / "out"
    assert di.main([str(root), "--out", str(out), "--window", "3", *FAST]) == 0
    doc = check_shares(out, dense_shares([states[s] for s in sorted(states)], GPT2_TRUNK))
    inp = doc["inputs"]
    assert inp["format"] == "hf" and inp["steps"] == [0, 2, 4, 6, 8, 10, 12]
    assert len(inp["files"]["6"]) > 1 and inp["trunk"]["preset"] == "gpt2"
    assert inp["trunk"]["dims"]["trunk"] == 2 * (32 * 96 + 32 * 32 + 2 * 32 * 128)
    assert inp["reference"]["ref_step"] == 0 and inp["reference"]["step0_present"]
    assert "A7" in doc["skipped"] and "skipped" in doc["results"]["switching"]
    nulls = json.loads((out / "nulls.json").read_text())["results"]
    assert set(nulls["nulls"]) == {"N1", "N2", "N3"} and nulls["nulls"]["N1"]["n_draws"] == 20
    assert nulls["statistics"]["trunk_pc1_raw"]["observed"] == pytest.approx(doc["results"]["trunk"]["pc1_raw_full"])
    summary = (out / "summary.md").read_text()
    assert "Conv1D" in summary and "matched random walk" in summary and re.search(r"\*\*(above|below|within)\*\*",
                                                                                  summary)
    for ext in ("png", "pdf"):
        assert (out / f"nulls_spectrum.{ext}").stat().st_size > 1000
    assert not list(tmp_path.glob(".out.tmp*"))


def test_hf_pytorch_model_bin_with_ref_step(hf_run, tmp_path):
    _, states = hf_run
    root = tmp_path / "bin_run"
    for step, state in states.items():
        (root / f"checkpoint-{step}").mkdir(parents=True)
        torch.save(state, root / f"checkpoint-{step}" / "pytorch_model.bin")
    out = tmp_path / "out"
    assert di.main([str(root), "--out", str(out), "--ref-step", "4", "--trunk", "gpt2", *FAST]) == 0
    steps = [s for s in sorted(states) if s >= 4]
    doc = check_shares(out, dense_shares([states[s] for s in steps], GPT2_TRUNK))
    ref = doc["inputs"]["reference"]
    assert ref["ref_step"] == 4 and ref["step0_present"] and not ref["step0_used"]
    assert ref["left_out_before_ref"] == [0, 2]


def nanogpt_state(rng: np.random.Generator, n_layer: int = 2, d: int = 16, vocab: int = 50) -> dict:
    """A nanoGPT GPT's state-dict names and shapes (nn.Linear weights are [out, in]; lm_head tied to wte)."""
    t = lambda *shape: torch.from_numpy(rng.standard_normal(shape).astype(np.float32))  # noqa: E731
    sd = {"transformer.wte.weight": t(vocab, d), "transformer.wpe.weight": t(8, d),
          "transformer.ln_f.weight": torch.ones(d)}
    for l in range(n_layer):
        p = f"transformer.h.{l}."
        sd.update({p + "ln_1.weight": torch.ones(d), p + "attn.c_attn.weight": t(3 * d, d),
                   p + "attn.c_proj.weight": t(d, d), p + "ln_2.weight": torch.ones(d),
                   p + "mlp.c_fc.weight": t(4 * d, d), p + "mlp.c_proj.weight": t(d, 4 * d)})
    sd["lm_head.weight"] = sd["transformer.wte.weight"]
    return sd


def nanogpt_series(root, steps, rng, prefix: str = "") -> list[dict]:
    """ckpt_<step>.pt files as nanoGPT's train.py writes them; the weights move by a drift plus noise."""
    root.mkdir(parents=True, exist_ok=True)
    state, direction = nanogpt_state(rng), nanogpt_state(rng)
    states = []
    for step in steps:
        state = {k: (v + 0.05 * direction[k] + 0.02 * torch.randn_like(v)) if v.dim() == 2 else v.clone()
                 for k, v in state.items()}
        state["lm_head.weight"] = state["transformer.wte.weight"]
        states.append(state)
        torch.save({"model": {prefix + k: v for k, v in state.items()},
                    "optimizer": {"state": {0: {"exp_avg": torch.zeros(3)}}, "param_groups": [{"lr": 1e-3}]},
                    "model_args": {"n_layer": 2, "n_embd": 16}, "iter_num": step, "best_val_loss": torch.tensor(2.5),
                    "config": {"dataset": "shakespeare_char"}}, root / f"ckpt_{step}.pt")
    return states


def test_nanogpt_series_matches_dense_svd(tmp_path):
    root = tmp_path / "nano"
    steps = [100, 200, 300, 400, 500, 600]
    states = nanogpt_series(root, steps, np.random.default_rng(0), prefix="_orig_mod.")
    torch.save({"model": {}}, root / "ckpt.pt")           # nanoGPT's latest checkpoint: no step in the name
    out = tmp_path / "out"
    assert di.main([str(root), "--out", str(out), "--window", "3", *FAST]) == 0
    doc = check_shares(out, dense_shares(states, GPT2_TRUNK))
    inp = doc["inputs"]
    assert inp["format"] == "torch" and inp["steps"] == steps and inp["stripped_prefixes"] == ["_orig_mod."]
    assert inp["ignored"] == ["ckpt.pt (no step in its name)"]
    assert not inp["reference"]["step0_present"] and "no step-0" in inp["reference"]["note"]
    assert "no step-0" in (out / "summary.md").read_text()
    # --step0 require refuses the same series
    assert di.main([str(root), "--out", str(tmp_path / "o2"), "--step0", "require", *FAST]) == 2


def test_project_run_equals_trajectory_pca(tiny_run_copy, tmp_path):
    import trajectory_pca_uncentered
    from drift.run.info import load_run
    before = sorted(p.relative_to(tiny_run_copy) for p in tiny_run_copy.rglob("*"))
    steps = load_run(tiny_run_copy).regular_steps(1)
    out = tmp_path / "out"
    assert di.main([str(tiny_run_copy), "--out", str(out), "--ref-step", "1", "--steps", *map(str, steps),
                    *FAST]) == 0
    assert sorted(p.relative_to(tiny_run_copy) for p in tiny_run_copy.rglob("*")) == before  # read only
    assert trajectory_pca_uncentered.main([str(tiny_run_copy), "--no-figures", "--no-progress"]) == 0
    ours = json.loads((out / "trajectory.json").read_text())
    theirs = json.loads((tiny_run_copy / "analysis" / "trajectory_pca.json").read_text())["results"]
    assert ours["inputs"]["format"] == "drift" and "A7" not in ours["skipped"]
    for section in ("setup", "trunk", "blocks", "rolling", "phases", "power_laws", "correlations", "switching",
                    "series"):
        assert_close(ours["results"][section], theirs[section], section)


def assert_close(a, b, where: str) -> None:
    if isinstance(a, dict):
        assert set(a) == set(b), where
        for k in a:
            assert_close(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_close(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and isinstance(b, (int, float)):
        assert a == pytest.approx(b, abs=1e-10, rel=1e-10), where
    else:
        assert a == b, where


# --------------------------------------------------------------------------------------------------------------
# Scopes and names
# --------------------------------------------------------------------------------------------------------------

def test_trunk_presets_and_regex():
    llama = {f"model.layers.{l}.{m}.weight": ((8, 8), "bfloat16") for l in range(3) for m in
             ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj",
              "mlp.up_proj", "mlp.down_proj", "input_layernorm", "post_attention_layernorm")}
    llama.update({"model.embed_tokens.weight": ((50, 8), "bfloat16"),
                  "model.layers.1.self_attn.rotary_emb.inv_freq": ((4,), "float32")})
    scopes, layers, preset, _ = sc.trunk_scopes(llama, "auto", "x")
    assert preset == "llama" and layers == [0, 1, 2] and len(scopes["trunk"]) == 21
    assert len(scopes["block1"]) == 7 and len(scopes["block1+ln"]) == 9  # + 2 norms, not the rotary buffer
    scopes, layers, preset, _ = sc.trunk_scopes(llama, r"model\.layers\.(\d+)\.mlp\.\w+\.weight", "x")
    assert preset == "regex" and len(scopes["trunk"]) == 9 and sc.scope_dims(llama, scopes)["trunk"] == 9 * 64
    with pytest.raises(fm.InspectError, match=r"selects no parameters .*model\.embed_tokens\.weight"):
        sc.trunk_scopes(llama, "gpt2", "ckpt-0")
    with pytest.raises(fm.InspectError, match="group capturing the layer index"):
        sc.trunk_scopes(llama, r"model\.layers\.\d+\.mlp\.\w+\.weight", "x")
    with pytest.raises(fm.InspectError, match="no trunk preset"):
        sc.trunk_scopes({"encoder.w": ((2, 2), "float32")}, "auto", "x")


def test_step_names_and_cadence():
    assert [fm.step_from_name(n) for n in ("checkpoint-500", "ckpt_000200", "model_step300_v2", "ckpt", "a1b2")] \
        == [500, 200, 300, None, None]
    assert fm.missing_cadence_steps([0, 10, 20, 30, 50, 60, 70, 75]) == (10, [40])
    assert fm.missing_cadence_steps([1, 2, 4, 8, 16, 32])[1] == []                 # log-spaced: no holes


# --------------------------------------------------------------------------------------------------------------
# Bad input: one line naming the file, exit 2, nothing written
# --------------------------------------------------------------------------------------------------------------

def small_state(seed: int, d: int = 4) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {f"h.{l}.{m}.weight": torch.randn(d, d, generator=g) for l in range(2)
            for m in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")}


def loose_series(root, n: int = 5, changes: dict | None = None) -> None:
    """ckpt_0.pt .. ckpt_{n-1}.pt; changes maps a step to a function editing its state dict."""
    root.mkdir(parents=True, exist_ok=True)
    changes = changes or {}
    for step in range(n):
        state = small_state(step)
        if step in changes:
            changes[step](state)
        torch.save(state, root / f"ckpt_{step}.pt")


class RunsCode:
    """A pickle payload: unpickling it calls exec, which creates the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').close()",)


def _shape(root):
    loose_series(root, changes={3: lambda s: s.update({"h.1.mlp.c_fc.weight": torch.zeros(4, 5)})})
    return "ckpt_3.pt", []


def _names(root):
    loose_series(root, changes={2: lambda s: s.pop("h.0.attn.c_proj.weight")})
    return "ckpt_2.pt", []


def _duplicate(root):
    loose_series(root)
    torch.save(small_state(9), root / "model_3.pt")
    return "model_3.pt", []


def _missing_step(root):
    loose_series(root)
    return str(root), ["--steps", "1", "2", "7"]


def _hole(root):
    loose_series(root, n=7)
    (root / "ckpt_3.pt").unlink()
    return "ckpt_2.pt", []


def _mixed(root):
    from safetensors.torch import save_file
    loose_series(root)
    save_file(small_state(7), root / "ckpt_5.safetensors")
    return "ckpt_", []


def _nan(root):
    loose_series(root, changes={3: lambda s: s["h.1.mlp.c_proj.weight"].__setitem__((0, 1), float("nan"))})
    return "ckpt_3.pt", []


def _garbage(root):
    loose_series(root)
    (root / "ckpt_2.pt").write_bytes(b"not a checkpoint" * 64)
    return "ckpt_2.pt", []


def _truncated_safetensors(root):
    from safetensors.torch import save_file
    root.mkdir(parents=True)
    for step in range(4):
        save_file(small_state(step), root / f"step_{step}.safetensors")
    data = (root / "step_2.safetensors").read_bytes()
    (root / "step_2.safetensors").write_bytes(data[:-64])
    return "step_2.safetensors", []


def _code(root):
    loose_series(root)
    torch.save({"model": {**small_state(3), "x": RunsCode(root.parent / "marker")}}, root / "ckpt_3.pt")
    return "ckpt_3.pt", []


@pytest.mark.parametrize("make", [_shape, _names, _duplicate, _missing_step, _hole, _mixed, _nan, _garbage,
                                  _truncated_safetensors, _code])
def test_bad_input_one_line_exit_2_nothing_written(make, tmp_path, capsys):
    root = tmp_path / "ckpts"
    named, extra = make(root)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("from before")
    capsys.readouterr()
    assert di.main([str(root), "--out", str(out), "--window", "3", *FAST, *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err and named in err, err
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    assert not list(tmp_path.glob(".out.tmp*"))


def test_pickle_that_runs_code_is_refused_not_run(tmp_path, capsys):
    root = tmp_path / "ckpts"
    _code(root)
    marker = tmp_path / "marker"
    assert di.main([str(root), "--out", str(tmp_path / "out"), *FAST]) == 2
    assert "refused" in capsys.readouterr().err and not marker.exists()
    torch.load(root / "ckpt_3.pt", weights_only=False)    # the control: an unrestricted load does run it
    assert marker.exists()


def test_command_line(tmp_path):
    """The module runs as a command: --help shows the examples; bad input exits 2 with one line, no traceback."""
    help_text = subprocess.run([sys.executable, "-m", "drift.inspect", "--help"], capture_output=True, text=True)
    assert help_text.returncode == 0 and "python -m drift.inspect out/my_hf_run" in help_text.stdout
    root = tmp_path / "ckpts"
    _shape(root)
    bad = subprocess.run([sys.executable, "-m", "drift.inspect", str(root), "--out", str(tmp_path / "out")],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "ckpt_3.pt" in bad.stderr
    assert not (tmp_path / "out").exists()
