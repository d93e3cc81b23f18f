"""Every value quoted from the paper, in one place, imported from here: the run's scale, its vocabulary, the step
positions and windows its analyses use, and the numbers of its tables, claims and figures that ours are printed
beside. Nothing here is computed; a change to a value is a change to what we say the paper reports.

    from drift.paper import PAPER_MAIN_STEPS, PAPER_TABLE4
    factor = cfg.train.total_steps / PAPER_MAIN_STEPS      # a run's step positions scale from the paper's

The paper's hyper-parameters themselves are the `paper` preset of drift/config.py, and its control experiments
(optimizers, checkpoint windows in paper steps) are drift/train/control_runs.py's definitions.
"""
from __future__ import annotations

# --------------------------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------------------------

PAPER_MAIN_STEPS = 10_000  # the main run's length; every step position of a shorter run is scaled from it
PAPER_VOCAB = 50_257       # GPT-2's tokenizer
PAPER_MAX_VAL, PAPER_MIN_P_OOD = 5.1, 0.02  # run C's early-stop rule: val > 5.1 and best p_ood < 0.02 at 2000

# --------------------------------------------------------------------------------------------------------------
# Trajectory analysis (A6, A7, A9): windows and steps, in paper steps
# --------------------------------------------------------------------------------------------------------------

PAPER_POWER_LAW_WINDOWS = ((0, 2000), (2000, 4000), (4000, 6000), (6000, 10000), (0, 4000), (4000, 10000))
PAPER_CORRELATION_WINDOWS = ((0, 10000), (0, 4000), (4000, 10000), (6000, 10000))
PAPER_GRADIENT_STEPS = [1] + list(range(800, 10_000, 1000))  # {1, 800, 1800, ..., 9800} (PROTOCOL A9)

# --------------------------------------------------------------------------------------------------------------
# Claims C11-C13 (PROTOCOL section 6), printed next to ours by the mechanism scripts
# --------------------------------------------------------------------------------------------------------------

PAPER_C11 = "block 0: |cos(u, v_b)| 0.15-0.34 early, peak ~0.32 near 1700; sign flip ~5100 (s271), |C| ~0.11 after"
PAPER_C12 = "|cos(g, v_b)| ~4e-4 (Fig 2) or 0.008-0.012 (sec 9.2); update/gradient gap '20-30x'"
PAPER_C13 = "q_b 2.4e-6 / 2.5e-6 / 1.6e-4 / 8.1e-3 at 200 / 1800 / 4800 / 9600; alpha 1.35 / 1.92 / 12.4 / 4.81"

# --------------------------------------------------------------------------------------------------------------
# Controls, beta2 sweep and reheating (PROTOCOL C15-C20)
# --------------------------------------------------------------------------------------------------------------

PAPER_TABLE4 = {"A": dict(final_val=1.59, best_p_ood=0.433, pc1=61.5, k95=9, drift=113.7),  # Table 4
                "B": dict(final_val=8.12, best_p_ood=0.000, pc1=100.0, k95=1, drift=40.2),
                "C": dict(final_val=5.10, best_p_ood=0.015, pc1=100.0, k95=1, drift=54.2),
                "C_prime": dict(final_val=5.25, best_p_ood=0.013, pc1=None, k95=None, drift=None)}
PAPER_MATCHED_WINDOWS = {  # Table 5, paper steps; (name, steps, paper pc1 / k95 / k99 / drift)
    "A": [("[1,200,400]", [1, 200, 400], (77.4, 2, 2, None)),
          ("[1,200,400,600]", [1, 200, 400, 600], (69.2, 3, 3, 24.9)),
          ("[200,400,600]", [200, 400, 600], (81.9, 2, 2, None)),
          ("[200..1000]", [200, 400, 600] + list(range(650, 1001, 50)), (77.8, 4, 8, 50.7)),
          ("[600..2000]", list(range(600, 2001, 50)), (61.5, 9, 19, 113.7))],
    "C": [("[2000,2200,2400]", [2000, 2200, 2400], (98.1, 1, 2, 0.26)),
          ("[1800..2600]", list(range(1800, 2601, 200)), (97.7, 1, 2, 0.60)),
          ("[600..2000]", list(range(600, 2001, 50)), (100.0, 1, 1, 54.2))],
}
PAPER_BETA2 = {  # beta2: C17 (full trajectory), C19, C14 (window variant)
    0.99: dict(pc1=68.8, raw_pc1=83.1, drift=120, best_p_ood=0.951, mean_abs_cos=0.243, early_abs_cos=0.368,
               early_corr=0.86, window_pc1=68.1, window_abs_cos=0.226),
    0.95: dict(pc1=68.3, raw_pc1=82.5, drift=123, best_p_ood=0.939, mean_abs_cos=0.244, early_abs_cos=0.363,
               early_corr=0.85, window_pc1=68.4, window_abs_cos=0.225),
    0.90: dict(pc1=66.7, raw_pc1=80.8, drift=128, best_p_ood=0.814, mean_abs_cos=0.234, early_abs_cos=0.343,
               early_corr=0.40, window_pc1=66.3, window_abs_cos=0.220),
    0.80: dict(pc1=63.8, raw_pc1=79.0, drift=141, best_p_ood=0.682, mean_abs_cos=0.227, early_abs_cos=0.328,
               early_corr=0.39, window_pc1=63.4, window_abs_cos=0.214),
    0.0: dict(pc1=52.5, raw_pc1=81.3, drift=1.6e5, best_p_ood=0.005, mean_abs_cos=0.238, early_abs_cos=0.269,
              early_corr=-0.57, window_pc1=51.6, window_abs_cos=0.099),
}
PAPER_REHEAT = {1e-3: dict(peak=0.705, peak_step=900, first_060=600, end=0.221),
                6e-4: dict(peak=0.782, peak_step=1000, first_060=700, end=0.279),
                3e-4: dict(peak=0.578, peak_step=1500, first_060=None, end=0.421)}
PAPER_REHEAT_START = 0.16

# --------------------------------------------------------------------------------------------------------------
# The probe study: the paper's seed-42 probe time series (authors' published metrics)
# --------------------------------------------------------------------------------------------------------------

PAPER_SEQS_PER_STEP = 128 * 0.10  # p_probe 0.10 of 128 sequences per step
PAPER_S42_P_OOD = {1800: 0.52, 2800: 0.71, 5000: 0.78, 5800: 0.34, 6400: 0.71, 7600: 0.14, 10000: 0.17}
PAPER_S42_P_IN = {1800: 0.57, 2800: 0.85}
