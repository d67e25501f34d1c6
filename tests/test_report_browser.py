"""The HTML report as a person sees it: rendered by Debian's headless Chromium, the screenshot
must show the plots. ``scripts/test.sh`` installs chromium when it is missing; without it the
test is skipped, except under CI (CI=true), where it fails.

The check: every embedded plot is decoded, and its coloured pixels (by hue) must appear in the
screenshot, at least 80% of them per hue. A page whose images are broken or missing shows
text and tables only (grey) and fails; the test proves that on a copy with broken images."""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.trace_support import TRACED

HUE_BINS = 12
WINDOW = (1280, 9000)  # tall enough for the whole report of the traced run


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        msg = ("Debian's chromium is not installed (scripts/test.sh installs it with apt-get): "
               "the report screenshot test cannot run")
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return exe


def screenshot(html: Path, png: Path) -> Image.Image:
    proc = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--force-device-scale-factor=1", f"--window-size={WINDOW[0]},{WINDOW[1]}",
         f"--screenshot={png}", html.resolve().as_uri()],
        capture_output=True, text=True, timeout=180)
    assert png.is_file(), f"chromium wrote no screenshot: {proc.stderr[-2000:]}"
    return Image.open(png).convert("RGB")


def coloured_by_hue(img: Image.Image) -> np.ndarray:
    """Pixel counts of clearly coloured pixels (saturation > 0.25, value > 0.3) per hue bin:
    plot lines, bars and markers; text, tables and the page are grey."""
    hsv = np.asarray(img.convert("RGB").convert("HSV")).astype(int)
    mask = (hsv[..., 1] > 64) & (hsv[..., 2] > 76)
    return np.bincount(hsv[..., 0][mask] * HUE_BINS // 256, minlength=HUE_BINS)


def embedded_images(html: str) -> list[Image.Image]:
    return [Image.open(io.BytesIO(base64.b64decode(b)))
            for b in re.findall(r'src="data:image/png;base64,([^"]+)"', html)]


def plots_shown(shot: Image.Image, images: list[Image.Image]) -> tuple[bool, str]:
    """Whether the screenshot shows the plots' colours, and why not."""
    want = sum(coloured_by_hue(im.convert("RGBA").convert("RGB")) for im in images)
    seen = coloured_by_hue(shot)
    if np.asarray(shot).std() < 5:
        return False, "the screenshot is blank"
    for b in np.flatnonzero(want > 500):
        if seen[b] < 0.8 * want[b]:
            return False, f"hue bin {b}: {seen[b]} coloured pixels shown of {want[b]} in the plots"
    if seen.sum() < 0.8 * want.sum():
        return False, f"{seen.sum()} coloured pixels shown of {want.sum()} in the plots"
    return True, ""


@pytest.fixture(scope="module")
def report(traced_run, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("browser")
    shutil.copy(traced_run[0] / TRACED / "report.html", folder / "report.html")
    return folder / "report.html"


class TestReportInChromium:
    def test_the_screenshot_shows_the_plots(self, report, tmp_path):
        # Setup: the report the loop wrote, its embedded plots decoded
        page = report.read_text()
        images = embedded_images(page)
        assert len(images) >= 4  # metric by iteration, regions, distributions, fidelity

        # Run
        shot = screenshot(report, tmp_path / "report.png")

        # Assert
        ok, why = plots_shown(shot, images)
        assert ok, why

    def test_the_check_fails_when_the_images_are_broken(self, report, tmp_path):
        # Setup: the same page with every image's data cut (the browser shows broken images)
        page = report.read_text()
        images = embedded_images(page)
        broken = tmp_path / "broken.html"
        broken.write_text(re.sub(r'base64,[^"]+"', 'base64,iVBORw0KGgo="', page))

        # Run
        shot = screenshot(broken, tmp_path / "broken.png")

        # Assert: the page still renders (text, tables) but the check refuses it
        assert np.asarray(shot).std() > 5
        ok, why = plots_shown(shot, images)
        assert not ok and why
