"""Tests for drift.report.plotting: both file formats are written, atomically (a failed write leaves the previous
figure whole), every figure of the project is saved through it, the p_ood overlay and the switch marker.

Run: pytest tests/test_plotting.py
"""
import errno
import io
import re
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

from drift.report import plotting as pl

ROOT = Path(__file__).resolve().parents[1]


def test_save_figure_writes_pdf_and_png(tmp_path):
    fig, ax = pl.new_figure()
    ax.plot([0, 1], [0, 1], color=pl.PALETTE["backbone"])
    paths = pl.save_figure(fig, tmp_path / "sub" / "fig")
    assert [p.name for p in paths] == ["fig.pdf", "fig.png"]
    assert paths[0].read_bytes()[:4] == b"%PDF" and paths[1].read_bytes()[:4] == b"\x89PNG"


def _line_figure(slope: float):
    fig, ax = pl.new_figure(width=1.0, height=0.8)  # small: a PNG at the style's 200 dpi is quick to draw
    ax.plot([0, 1], [0, slope], color=pl.PALETTE["backbone"])
    return fig


@pytest.mark.parametrize("failing", ["pdf", "png"])
def test_failed_figure_write_leaves_the_old_figure_whole(tmp_path, monkeypatch, failing):
    """A disk that fills up half way through the PDF (or through the PNG, after the PDF was written) leaves both
    files of the previous figure byte for byte, and no temporary file."""
    stem = tmp_path / "fig"
    old = {p.name: p.read_bytes() for p in pl.save_figure(_line_figure(1.0), stem)}
    real_savefig = Figure.savefig

    def savefig_until_full(self, fname, *args, format=None, **kwargs):
        fmt = format or Path(fname).suffix[1:]
        if fmt != failing:
            return real_savefig(self, fname, *args, format=format, **kwargs)
        buf = io.BytesIO()
        real_savefig(self, buf, *args, format=fmt, **kwargs)
        Path(fname).write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])  # what fitted before the disk was full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", savefig_until_full)
    with pytest.raises(OSError, match="No space left"):
        pl.save_figure(_line_figure(-1.0), stem)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == old  # same two files, same bytes, nothing else


def test_figure_rewrite_replaces_both_files(tmp_path):
    stem = tmp_path / "fig"
    first = [p.read_bytes() for p in pl.save_figure(_line_figure(1.0), stem)]
    second = [p.read_bytes() for p in pl.save_figure(_line_figure(-1.0), stem)]
    assert all(a != b for a, b in zip(first, second)) and sorted(p.name for p in tmp_path.iterdir()) == \
        ["fig.pdf", "fig.png"]


def test_every_figure_is_saved_through_save_figure():
    """savefig appears only in plotting.save_figure, so no figure of the project is written non-atomically."""
    sources = [*ROOT.joinpath("drift").rglob("*.py"), *ROOT.glob("*.py"), *ROOT.joinpath("bench").rglob("*.py")]
    callers = sorted(str(p.relative_to(ROOT)) for p in sources if re.search(r"\.savefig\(", p.read_text()))
    assert callers == ["drift/report/plotting.py"]


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
