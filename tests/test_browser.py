"""The executed explorer in a real browser: JupyterLab headless + Chromium (skipped where Chromium is absent, unless
``WORKBOOK_REQUIRE_BROWSER=1``: CI sets it once ``scripts/install_chromium.sh`` has installed Chromium, so there a
missing browser fails instead of skipping). ``conftest.py`` prints this module's outcome at the end of every run."""

from __future__ import annotations

import os

import pytest

from lib.browser_check import check_explorer, find_chromium, frame_pixels


def test_frame_pixels_counts_the_ranked_list_colours():
    import io

    import numpy as np
    from PIL import Image

    a = np.full((10, 10, 3), 255, np.uint8)
    a[:2] = (0x1A, 0x98, 0x50)
    a[2:5] = (0xD7, 0x30, 0x27)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="png")
    assert frame_pixels(buf.getvalue()) == {"green": 20, "red": 30, "non_white": 50, "pixels": 100}


REQUIRED = os.environ.get("WORKBOOK_REQUIRE_BROWSER") == "1"


@pytest.mark.skipif(find_chromium() is None and not REQUIRED,
                    reason="Chromium is not installed (`make browser-deps` or apt-get install chromium); "
                           "`make browser-check` runs this check where it is")
def test_the_executed_explorer_shows_its_widgets_and_ranked_gallery(trained_profile, tmp_path):
    from lib.workbook import run_notebook

    assert find_chromium() is not None, "WORKBOOK_REQUIRE_BROWSER=1 but no Chromium (CHROMIUM, chromium on PATH)"

    profile, _ = trained_profile
    nb = run_notebook("notebooks/13_explorer.ipynb", "tiny", output_root=profile.parent,
                      overrides={"ORDER": "as listed"})
    report = check_explorer(nb, screenshot=tmp_path / "shot.png", timeout=120)
    assert report.ok, f"{report.failures}; page {report.page}; pixels {report.pixels}"
    assert report.page["dropdowns"] >= 4 and report.page["images"] >= 3 and not report.page["fallback"]
    assert (tmp_path / "shot.png").stat().st_size > 50_000
