"""Check the executed explorer in a real browser: JupyterLab headless + Debian's Chromium (``make browser-check``).

1. start JupyterLab on a free local port (no token, no browser) serving the notebook's folder (the executed notebook
   is trusted — ``python -m lib.workbook`` signs what it executes — so its widget state may render);
2. start Chromium headless with a DevTools port and drive it over the DevTools protocol (a websocket; tornado's
   client, already installed with Jupyter): open the executed ``13_explorer.ipynb``, wait (real time, up to
   ``timeout`` s) until JupyterLab has restored the saved widget state — the explorer's dropdowns, sliders and
   pictures are in the page — and take a screenshot;
3. check the page and the screenshot: the widgets are there (not the text fallback ``VBox(children=…``), the pictures
   have loaded, and the screenshot shows the ranked gallery's green and red frames (not a blank or error page).

``python -m lib.browser_check [NOTEBOOK] [--out shot.png]`` prints what it found and exits non-zero when a check
fails; ``tests/test_browser.py`` runs the same (skipped where Chromium is absent).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .utils.paths import resolve_path

__all__ = ["find_chromium", "BrowserReport", "BrowserCheckError", "check_explorer", "frame_pixels", "main"]

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
#: Chromium flags for this machine's closed network (see the README's "Checked in a real browser").
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--remote-allow-origins=*", "--hide-scrollbars")

#: What the page must hold once the widgets are restored (JavaScript, returns a JSON string).
_PROBE = """JSON.stringify({
  dropdowns: document.querySelectorAll('.widget-dropdown').length,
  sliders: document.querySelectorAll('.widget-slider, .widget-hslider').length,
  images: Array.from(document.querySelectorAll('img.widget-image')).filter(i => i.complete && i.naturalWidth > 100).length,
  rects: Array.from(document.querySelectorAll('img.widget-image')).map(i => { const r = i.getBoundingClientRect();
    return [r.left, r.top, r.width, r.height]; }),
  fallback: Array.from(document.querySelectorAll('.jp-OutputArea-output pre')).some(p => p.textContent.startsWith('VBox(')),
  errors: document.querySelectorAll('.jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"]').length,
  title: document.title
})"""


def find_chromium() -> str | None:
    """The Chromium executable (``CHROMIUM`` environment variable, else the first on PATH), or ``None``."""
    env = os.environ.get("CHROMIUM")
    if env:
        return env if Path(env).is_file() else None
    return next((p for p in (shutil.which(n) for n in CHROMIUM_NAMES) if p), None)


def _free_ports(n: int) -> list[int]:
    """``n`` distinct free local ports (all sockets open at once, so none is handed out twice)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _stop(p: subprocess.Popen | None) -> None:
    """Stop a process and everything it started (its own process group: JupyterLab's kernel, Chromium's helpers)."""
    if p is None or p.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            return
        try:
            p.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _tail(path: Path, n: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


def _wait_http(url: str, timeout: float) -> str:
    end = time.time() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.read().decode()
        except OSError:
            if time.time() > end:
                raise TimeoutError(f"{url} did not answer within {timeout:.0f} s") from None
            time.sleep(0.3)


def frame_pixels(png: bytes, box: tuple[float, float, float, float] | None = None) -> dict[str, int]:
    """Pixels of the ranked list's frame colours (:data:`lib.viz.MATCH_COLOURS`) and the non-white ones, in the
    whole picture or in ``box`` = (left, top, width, height)."""
    from PIL import Image

    from .viz import MATCH_COLOURS

    a = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    if box is not None:
        x, y, w, h = (int(round(v)) for v in box)
        a = a[max(0, y):max(0, y + h), max(0, x):max(0, x + w)]

    def near(hex_colour: str) -> int:
        c = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])
        return int((np.abs(a - c).sum(axis=2) < 40).sum())
    return {"green": near(MATCH_COLOURS[True]), "red": near(MATCH_COLOURS[False]),
            "non_white": int((a.sum(axis=2) < 720).sum()), "pixels": int(a.shape[0] * a.shape[1])}


class BrowserCheckError(RuntimeError):
    """JupyterLab or Chromium did not come up or could not be driven (the message has both logs' tails)."""


@dataclass
class BrowserReport:
    """What the browser showed: the page probe, the screenshot's colour counts, the failed checks."""

    url: str
    page: dict = field(default_factory=dict)
    pixels: dict = field(default_factory=dict)
    screenshot: Path | None = None
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures


async def _drive(ws_url: str, url: str, timeout: float, size: tuple[int, int]) -> tuple[dict, bytes]:
    from tornado.websocket import websocket_connect

    conn = await websocket_connect(ws_url, max_message_size=256 * 2**20)
    ids = iter(range(1, 1_000_000))

    async def call(method: str, **params):
        i = next(ids)
        await conn.write_message(json.dumps({"id": i, "method": method, "params": params}))
        while True:
            msg = await conn.read_message()
            if msg is None:
                raise ConnectionError("the browser closed the DevTools connection")
            data = json.loads(msg)
            if data.get("id") == i:
                if "error" in data:
                    raise RuntimeError(f"DevTools {method}: {data['error']}")
                return data.get("result", {})

    await call("Emulation.setDeviceMetricsOverride", width=size[0], height=size[1], deviceScaleFactor=1, mobile=False)
    await call("Page.enable")
    await call("Page.navigate", url=url)
    page: dict = {}
    end = time.time() + timeout
    while time.time() < end:
        await asyncio.sleep(1.0)
        r = await call("Runtime.evaluate", expression=_PROBE, returnByValue=True)
        page = json.loads(r.get("result", {}).get("value") or "{}")
        if page.get("dropdowns", 0) >= 4 and page.get("images", 0) >= 3:
            await asyncio.sleep(1.5)  # let the last pictures paint
            break
    shot = await call("Page.captureScreenshot", format="png")
    conn.close()
    return page, base64.b64decode(shot["data"])


def check_explorer(notebook: str | Path = "outputs/tiny/notebooks/13_explorer.ipynb", *,
                   screenshot: str | Path | None = None, timeout: float = 90.0,
                   size: tuple[int, int] = (1400, 2300)) -> BrowserReport:
    """Open the executed explorer ``notebook`` in JupyterLab in headless Chromium and check what it shows.

    Raises:
        FileNotFoundError: no Chromium, or the notebook does not exist (run ``make demo`` first).
    """
    chromium = find_chromium()
    if chromium is None:
        raise FileNotFoundError(f"no Chromium found ({', '.join(CHROMIUM_NAMES)} on PATH, or CHROMIUM=path); on Debian: "
                                "apt-get install chromium")
    nb = resolve_path(notebook)
    if not nb.is_file():
        raise FileNotFoundError(f"{nb} does not exist: run `make demo` (it executes notebook 13) first")
    root = nb.resolve().parent  # JupyterLab serves the notebook's folder: the saved widget state is all it needs
    rel = Path(nb.name)
    t0 = time.time()
    lab_port, dev_port = _free_ports(2)
    tmp = Path(tempfile.mkdtemp(prefix="browser-check-"))
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp / "config"), JUPYTERLAB_SETTINGS_DIR=str(tmp / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp / "workspaces"))
    jupyter = Path(sys.executable).with_name("jupyter")
    browser = None
    url = f"http://127.0.0.1:{lab_port}/lab/tree/{rel.as_posix()}?reset"
    report = BrowserReport(url)
    with open(tmp / "lab.log", "w") as lab_log, open(tmp / "chromium.log", "w") as chromium_log:
        lab = subprocess.Popen(
            [str(jupyter) if jupyter.exists() else "jupyter", "lab", "--no-browser", f"--port={lab_port}",
             "--ip=127.0.0.1", "--ServerApp.token=", "--ServerApp.password=", "--ServerApp.allow_root=True",
             f"--ServerApp.root_dir={root}", "--LabApp.news_url=None",
             "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
            stdout=lab_log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            _wait_http(f"http://127.0.0.1:{lab_port}/api/status", 60)
            browser = subprocess.Popen([chromium, *CHROMIUM_FLAGS, f"--remote-debugging-port={dev_port}",
                                        f"--user-data-dir={tmp / 'chromium'}", "about:blank"],
                                       stdout=subprocess.DEVNULL, stderr=chromium_log, start_new_session=True)
            targets = json.loads(_wait_http(f"http://127.0.0.1:{dev_port}/json/list", 30))
            ws = next((t["webSocketDebuggerUrl"] for t in targets if t.get("type") == "page"), None)
            if ws is None:
                raise ConnectionError(f"Chromium offers no page to drive (targets: {targets})")
            report.page, png = asyncio.run(_drive(ws, url, timeout, size))
        except (TimeoutError, ConnectionError, RuntimeError, OSError) as e:
            raise BrowserCheckError(f"{type(e).__name__}: {e}\n--- JupyterLab log (tail):\n{_tail(tmp / 'lab.log')}\n"
                                    f"--- Chromium log (tail):\n{_tail(tmp / 'chromium.log')}") from None
        finally:
            _stop(browser)
            _stop(lab)
    shutil.rmtree(tmp, ignore_errors=True)
    report.seconds = round(time.time() - t0, 1)
    if screenshot is not None:
        from .utils.io import atomic_write_bytes

        report.screenshot = atomic_write_bytes(resolve_path(screenshot), png)
    p = report.page
    rects = p.get("rects") or []
    # the ranked list is the explorer's second picture (query, ranked gallery, CMC): count its frames there only
    report.pixels = px = frame_pixels(png, tuple(rects[1]) if len(rects) >= 2 else None)
    if p.get("dropdowns", 0) < 4 or p.get("sliders", 0) < 2:
        report.failures.append(f"the explorer's controls are not in the page ({p.get('dropdowns', 0)} dropdowns, "
                               f"{p.get('sliders', 0)} sliders; expected ≥ 4 and ≥ 2)")
    if p.get("fallback"):
        report.failures.append("a widget shows its text fallback (VBox(children=…): the widget state was not restored")
    if p.get("images", 0) < 3:
        report.failures.append(f"{p.get('images', 0)} of the 3 pictures (query, ranked gallery, CMC) loaded")
    if p.get("errors", 0):
        report.failures.append(f"{p['errors']} error output(s) in the notebook")
    if px["green"] < 200 and px["red"] < 200:
        report.failures.append(f"the screenshot shows no ranked gallery frames (green {px['green']}, red {px['red']} px)")
    if frame_pixels(png)["non_white"] < 0.05 * size[0] * size[1]:
        report.failures.append("the screenshot is (almost) blank")
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lib.browser_check", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("notebook", nargs="?", default="outputs/tiny/notebooks/13_explorer.ipynb")
    ap.add_argument("--out", default="outputs/tiny/figures/explorer_browser.png", help="where the screenshot goes")
    ap.add_argument("--timeout", type=float, default=90.0)
    a = ap.parse_args(argv)
    try:
        r = check_explorer(a.notebook, screenshot=a.out, timeout=a.timeout)
    except (FileNotFoundError, ValueError, BrowserCheckError) as e:
        print(f"browser check: {e}", file=sys.stderr)
        return 2
    print(f"browser check of {r.url} ({r.seconds} s): page {r.page}; screenshot {r.screenshot} {r.pixels}")
    for f in r.failures:
        print(f"FAILED: {f}", file=sys.stderr)
    print("browser check: ok" if r.ok else "browser check: FAILED")
    return 0 if r.ok else 1


if __name__ == "__main__":
    sys.exit(main())
