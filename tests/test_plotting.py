"""Tests for drift.report.plotting: both file formats are written, the p_ood overlay and the switch marker.

Run: pytest tests/test_plotting.py
"""
import numpy as np

from drift.report import plotting as pl


def test_save_figure_writes_pdf_and_png(tmp_path):
    fig, ax = pl.new_figure()
    ax.plot([0, 1], [0, 1], color=pl.PALETTE["backbone"])
    paths = pl.save_figure(fig, tmp_path / "sub" / "fig")
    assert [p.name for p in paths] == ["fig.pdf", "fig.png"]
    assert paths[0].read_bytes()[:4] == b"%PDF" and paths[1].read_bytes()[:4] == b"\x89PNG"


def test_overlay_and_switch_marker():
    fig, ax = pl.new_figure()
    twin = pl.overlay_p_ood(ax, [1, 200, 400, 600], pl.as_array([0.1, None, 0.5, 0.3]))
    line = twin.get_lines()[0]
    np.testing.assert_array_equal(line.get_xdata(), [1, 400, 600])  # the missing eval is skipped
    assert twin.get_ylim() == (0.0, 1.0) and line.get_linestyle() == "--"
    pl.mark_switch(ax, 400)
    pl.mark_switch(ax, None)
    vlines = [l for l in ax.get_lines() if l.get_linestyle() == "--"]
    assert len(vlines) == 1 and list(vlines[0].get_xdata()) == [400, 400]
