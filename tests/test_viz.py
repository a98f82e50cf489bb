"""lib.viz draws on off-screen matplotlib Figures (no pyplot state); notebooks show the PNG they save."""

from __future__ import annotations

import io

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from lib.viz import cmc_curves, figure_png, ranked_list, show_figure, subplots


def test_subplots_gives_an_off_screen_figure_shaped_like_pyplots():
    before = plt.get_fignums()
    fig, axes = subplots(2, 3, figsize=(3, 2), squeeze=False)
    assert isinstance(fig, Figure) and axes.shape == (2, 3) and len(fig.axes) == 6
    assert tuple(fig.get_size_inches()) == (3.0, 2.0)
    fig2 = cmc_curves({"a": [0.2, 0.5, 1.0], "b": [0.1, 0.4, 1.0]}, title="t")
    fig3 = ranked_list(np.zeros((8, 4, 3), np.uint8), [np.full((16, 8, 3), 200, np.uint8)] * 3, matches=[True, False, True])
    assert isinstance(fig2, Figure) and isinstance(fig3, Figure)
    assert plt.get_fignums() == before  # nothing registered with pyplot: no close needed, nothing shown twice


def test_figure_png_is_deterministic_and_show_figure_saves_what_it_shows(tmp_path, monkeypatch):
    fig, ax = subplots(figsize=(2, 1.5))
    ax.plot([0, 1], [1, 0])
    png = figure_png(fig)
    assert png == figure_png(fig) and Image.open(io.BytesIO(png)).format == "PNG"
    out = show_figure(fig, tmp_path / "sub" / "f.png")  # plain Python: saved, nothing displayed
    assert out == tmp_path / "sub" / "f.png" and out.read_bytes() == png

    import IPython
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython, "get_ipython", lambda: object())  # as inside a kernel
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj))
    out = show_figure(fig, tmp_path / "g.png")
    (img,) = shown
    assert isinstance(img, IPython.display.Image) and img.data == out.read_bytes() == png
