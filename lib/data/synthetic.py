"""Embedded procedural pedestrian re-ID dataset for demos and CI.

Draws small pedestrians (head, hair, torso, arms, legs, shoes) with numpy + PIL so that the
workbook can run end to end without downloading a real benchmark. It is designed to be
*meaningful for cross-resolution re-ID*:

* **Coarse attributes** (garment colours and shapes, hair, skin, bag, body build) are shared by
  every identity of a *look-alike group* (``group_size`` identities) and differ between groups,
  so a low-resolution (LR) image tells groups apart but is ambiguous inside a group.
* **Fine attributes** differ inside a group and are mostly destroyed by down-sampling by
  r = 2..4: a zero-mean shirt pattern with a 3-4 px period (stripes, checks, dots, ...), a
  ~6 px chest emblem (shape + colour), a thin-stroke jersey number on the back, a belt
  buckle, a shoe-sole trim and glasses.
* **Cameras** differ in viewpoint (front / back / side: the emblem is hidden from the back,
  the jersey number is visible only from the back, the side view squeezes the body),
  illumination (gain, colour cast, gamma, side light), background (wall / floor colours,
  texture, floor line, clutter), person scale and noise level; every image adds position,
  scale and pose jitter (leg stride, arm swing) and sensor noise.

Everything is drawn from ``numpy.random.default_rng`` generators seeded from the config seed
and (stream, pid / group / cam, k), so the same config gives byte-identical files.

Output layout (``generate_synthetic``)::

    out_dir/images/{pid:04d}_c{cam}_{k:02d}.png
    out_dir/attributes.json   # config, palettes, cameras, per-pid group / split / coarse / fine
    out_dir/manifest.csv      # path,pid,camid,split   (written last)

Command line::

    python -m lib.data.synthetic OUT_DIR --num-identities 40 --seed 0
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import math
import os
import pathlib
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from PIL import Image, ImageDraw

__all__ = [
    "SyntheticConfig",
    "IdentitySpec",
    "CameraSpec",
    "sample_identities",
    "sample_cameras",
    "assign_splits",
    "render_background",
    "render_image",
    "image_name",
    "generate_synthetic",
    "main",
]

#: Drawing happens at this multiple of the output resolution, then a box filter averages it down.
SUPERSAMPLE = 3
MANIFEST_NAME = "manifest.csv"
ATTRIBUTES_NAME = "attributes.json"
IMAGES_DIRNAME = "images"
MANIFEST_COLUMNS = ("path", "pid", "camid", "split")

VIEWS = ("front", "back", "side")
PATTERNS = ("plain", "hstripes", "vstripes", "checks", "dots", "diagonal")
EMBLEM_SHAPES = ("circle", "square", "triangle", "diamond", "cross", "star")
HAIR_STYLES = ("short", "long", "bun", "cap")
SLEEVES = ("short", "long")
BOTTOM_STYLES = ("trousers", "shorts", "skirt")
BAGS = ("none", "backpack", "shoulder_bag")
BUCKLES = ("gold", "silver", "black", "red")
TEXTURES = ("plain", "panels", "bricks", "gradient")
CLUTTER = ("pole", "door", "plant", "bench", "sign")

RGB = tuple[int, int, int]

# Garment palettes avoid the extremes so that zero-mean patterns keep contrast without clipping.
TOP_COLOURS: dict[str, RGB] = {
    "red": (190, 50, 50), "orange": (215, 125, 45), "yellow": (205, 185, 60),
    "green": (65, 150, 75), "teal": (45, 140, 140), "blue": (55, 95, 185),
    "purple": (120, 65, 160), "pink": (215, 125, 160), "grey": (130, 130, 130),
    "white": (205, 205, 198), "black": (62, 62, 68), "brown": (130, 85, 50),
    "olive": (125, 125, 55), "maroon": (125, 40, 60),
}
BOTTOM_COLOURS: dict[str, RGB] = {
    "denim": (60, 85, 135), "black": (42, 42, 48), "khaki": (180, 160, 112),
    "grey": (112, 112, 118), "brown": (100, 70, 45), "navy": (38, 48, 88),
    "white": (215, 215, 208), "olive": (95, 100, 58), "red": (155, 42, 48),
    "beige": (200, 186, 160),
}
SKIN_TONES: dict[str, RGB] = {
    "light": (238, 205, 180), "fair": (225, 185, 150), "medium": (198, 150, 112),
    "tan": (165, 115, 80), "brown": (120, 80, 55), "dark": (85, 58, 42),
}
HAIR_COLOURS: dict[str, RGB] = {
    "black": (25, 22, 22), "dark_brown": (60, 40, 28), "brown": (110, 72, 40),
    "blonde": (215, 185, 110), "auburn": (150, 60, 35), "grey": (165, 165, 165),
}
SHOE_COLOURS: dict[str, RGB] = {
    "black": (30, 30, 32), "white": (228, 228, 228), "brown": (95, 60, 35),
    "grey": (120, 120, 125), "red": (170, 35, 40), "blue": (45, 70, 160),
}
ACCESSORY_COLOURS: dict[str, RGB] = {  # bags, caps, belts
    "black": (35, 35, 38), "brown": (110, 70, 40), "navy": (40, 50, 100),
    "red": (165, 40, 40), "green": (50, 110, 60), "grey": (105, 105, 110),
    "tan": (175, 140, 95),
}
DETAIL_COLOURS: dict[str, RGB] = {  # emblems, jersey numbers, shoe trims
    "white": (245, 245, 245), "black": (15, 15, 15), "red": (225, 30, 35),
    "yellow": (250, 220, 20), "cyan": (20, 200, 225), "magenta": (215, 40, 190),
    "lime": (120, 230, 40), "orange": (250, 140, 20),
}
BUCKLE_COLOURS: dict[str, RGB] = {
    "gold": (225, 185, 40), "silver": (200, 205, 215), "black": (20, 20, 20), "red": (210, 30, 30),
}
WALL_COLOURS: dict[str, RGB] = {
    "concrete": (150, 148, 140), "cream": (200, 192, 170), "brick": (140, 88, 70),
    "slate": (95, 105, 115), "sage": (140, 155, 130), "sand": (185, 170, 135),
    "night": (60, 64, 78),
}
FLOOR_COLOURS: dict[str, RGB] = {
    "asphalt": (75, 75, 78), "pavement": (140, 138, 132), "tiles": (175, 170, 160),
    "grass": (85, 125, 70), "wood": (135, 100, 70), "gravel": (120, 112, 100),
}

# Independent random streams: rng([seed, stream, *keys]).
_STREAM_GROUP_COMBOS = 0
_STREAM_GROUP = 1
_STREAM_IDENTITY = 2
_STREAM_CAMERA = 3
_STREAM_IMAGE = 4
_STREAM_SPLIT = 5


# --------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyntheticConfig:
    """Size and seed of a synthetic dataset.

    Attributes:
        num_identities: number of identities (pids ``0..num_identities-1``).
        num_cameras: number of cameras; camera ``c`` sees the view ``VIEWS[c % 3]``.
        images_per_camera: images per identity per camera.
        height: image height in pixels.
        width: image width in pixels.
        group_size: identities per look-alike group (they share every coarse attribute).
        train_fraction: fraction of identities (rounded, at least one per split) in ``train``.
        seed: non-negative seed of every random draw.
    """

    num_identities: int = 60
    num_cameras: int = 3
    images_per_camera: int = 2
    height: int = 128
    width: int = 64
    group_size: int = 2
    train_fraction: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the field, the expected and the found value."""
        minimum = {"num_identities": 2, "num_cameras": 2, "images_per_camera": 1,
                   "height": 32, "width": 16, "group_size": 1, "seed": 0}
        for name, low in minimum.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"SyntheticConfig.{name}: expected an integer >= {low}, found {value!r}")
        tf = self.train_fraction
        if isinstance(tf, bool) or not isinstance(tf, (int, float, np.floating)) or not 0.0 < float(tf) < 1.0:
            raise ValueError(f"SyntheticConfig.train_fraction: expected a number with 0 < x < 1, found {tf!r}")

    @property
    def num_groups(self) -> int:
        """Number of look-alike groups (the last one may be smaller than ``group_size``)."""
        return -(-self.num_identities // self.group_size)

    @property
    def num_train(self) -> int:
        """Number of identities in the ``train`` split."""
        n = int(round(self.train_fraction * self.num_identities))
        return min(max(n, 1), self.num_identities - 1)

    def group_of(self, pid: int) -> int:
        """Look-alike group of ``pid`` (consecutive pids share a group)."""
        return pid // self.group_size


def _rng(config: SyntheticConfig, stream: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng([int(config.seed), stream, *map(int, keys)])


# --------------------------------------------------------------------------------------------
# attributes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IdentitySpec:
    """Attributes of one identity: ``coarse`` (shared by its look-alike group) and ``fine``."""

    pid: int
    group: int
    coarse: dict[str, Any]
    fine: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"pid": self.pid, "group": self.group, "coarse": self.coarse, "fine": self.fine}


@dataclass(frozen=True)
class CameraSpec:
    """Viewpoint, illumination, background and framing of one camera."""

    camid: int
    view: str
    gain: float
    cast: tuple[float, float, float]
    gamma: float
    side_light: float
    noise_sigma: float
    height_fraction: float
    wall: str
    floor: str
    floor_line: float
    texture: str
    clutter: tuple[dict[str, Any], ...]

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["cast"] = list(self.cast)
        d["clutter"] = [dict(c) for c in self.clutter]
        return d


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _distinct(rng: np.random.Generator, options: Sequence[str], n: int) -> list[str]:
    """``n`` options, all different while ``n <= len(options)`` (then cycling)."""
    order = rng.permutation(len(options))
    return [options[int(order[i % len(options)])] for i in range(n)]


def _sample_group_coarse(config: SyntheticConfig) -> list[dict[str, Any]]:
    """Coarse attributes per group; (top colour, bottom colour) pairs are unique while possible."""
    tops, bottoms = list(TOP_COLOURS), list(BOTTOM_COLOURS)
    combos = [(t, b) for t in tops for b in bottoms if t != b]
    order = _rng(config, _STREAM_GROUP_COMBOS).permutation(len(combos))
    groups = []
    for g in range(config.num_groups):
        rng = _rng(config, _STREAM_GROUP, g)
        top, bottom = combos[int(order[g % len(combos)])]
        hair_style = _pick(rng, HAIR_STYLES)
        bottom_style = _pick(rng, BOTTOM_STYLES)
        bag = str(rng.choice(BAGS, p=[0.5, 0.3, 0.2]))
        groups.append({
            "top_colour": top,
            "sleeves": _pick(rng, SLEEVES),
            "bottom_style": bottom_style,
            "bottom_colour": bottom,
            "skin": _pick(rng, list(SKIN_TONES)),
            "hair_colour": _pick(rng, list(HAIR_COLOURS)),
            "hair_style": hair_style,
            "cap_colour": _pick(rng, list(ACCESSORY_COLOURS)) if hair_style == "cap" else None,
            "shoe_colour": _pick(rng, list(SHOE_COLOURS)),
            "belt_colour": (_pick(rng, list(ACCESSORY_COLOURS))
                            if bottom_style != "skirt" and rng.random() < 0.6 else None),
            "bag": bag,
            "bag_colour": _pick(rng, list(ACCESSORY_COLOURS)) if bag != "none" else None,
            "height_scale": round(float(rng.uniform(0.93, 1.05)), 4),
            "build": round(float(rng.uniform(0.88, 1.12)), 4),
        })
    return groups


def _pattern_colours(base: RGB, rng: np.random.Generator) -> tuple[RGB, RGB]:
    """Two colours ``base +- d`` (a zero-mean pair) with a mostly-luminance offset ``d``."""
    direction = np.ones(3) + 0.3 * rng.normal(size=3)
    direction *= rng.choice([-1.0, 1.0]) / np.abs(direction).max()
    b = np.asarray(base, dtype=float)
    d = 85.0 * direction
    # shrink uniformly so that both base + d and base - d stay inside [0, 255]
    room = np.minimum(b, 255.0 - b)
    scale = min(1.0, float(np.min(room / np.maximum(np.abs(d), 1e-6))))
    d *= scale
    c1 = tuple(int(round(v)) for v in b + d)
    c2 = tuple(int(round(v)) for v in b - d)
    return c1, c2  # type: ignore[return-value]


def sample_identities(config: SyntheticConfig) -> list[IdentitySpec]:
    """Attributes of every identity; members of a group differ in pattern and emblem."""
    groups = _sample_group_coarse(config)
    identities: list[IdentitySpec] = []
    for g, coarse in enumerate(groups):
        members = list(range(g * config.group_size, min((g + 1) * config.group_size, config.num_identities)))
        grng = _rng(config, _STREAM_GROUP, g, 1)
        patterns = _distinct(grng, PATTERNS, len(members))
        shapes = _distinct(grng, EMBLEM_SHAPES, len(members))
        emblem_colours = _distinct(grng, list(DETAIL_COLOURS), len(members))
        numbers = grng.permutation(100)
        for i, pid in enumerate(members):
            rng = _rng(config, _STREAM_IDENTITY, pid)
            colours = _pattern_colours(TOP_COLOURS[coarse["top_colour"]], rng)
            fine = {
                "pattern": patterns[i],
                "pattern_period_px": int(rng.choice([3, 4])),
                "pattern_rgb": [list(colours[0]), list(colours[1])],
                "emblem_shape": shapes[i],
                "emblem_colour": emblem_colours[i],
                "back_number": int(numbers[i % 100]),
                "back_number_colour": _pick(rng, list(DETAIL_COLOURS)),
                "buckle": _pick(rng, BUCKLES) if coarse["belt_colour"] is not None else None,
                "shoe_trim": _pick(rng, list(DETAIL_COLOURS)),
                "glasses": bool(rng.random() < 0.35),
            }
            identities.append(IdentitySpec(pid=pid, group=g, coarse=dict(coarse), fine=fine))
    return identities


def sample_cameras(config: SyntheticConfig) -> list[CameraSpec]:
    """Per-camera viewpoint (``VIEWS[c % 3]``), illumination, background and framing."""
    cameras = []
    for c in range(config.num_cameras):
        rng = _rng(config, _STREAM_CAMERA, c)
        clutter = []
        for _ in range(int(rng.integers(1, 4))):
            clutter.append({
                "kind": _pick(rng, CLUTTER),
                "x": round(float(rng.uniform(0.02, 0.98)), 4),
                "size": round(float(rng.uniform(0.7, 1.3)), 4),
                "colour": [int(v) for v in rng.integers(30, 226, size=3)],
            })
        cameras.append(CameraSpec(
            camid=c,
            view=VIEWS[c % len(VIEWS)],
            gain=round(float(rng.uniform(0.8, 1.2)), 4),
            cast=tuple(round(float(v), 4) for v in rng.uniform(0.88, 1.12, size=3)),  # type: ignore[arg-type]
            gamma=round(float(rng.uniform(0.8, 1.25)), 4),
            side_light=round(float(rng.uniform(-0.18, 0.18)), 4),
            noise_sigma=round(float(rng.uniform(1.0, 3.5)), 4),
            height_fraction=round(float(rng.uniform(0.76, 0.9)), 4),
            wall=_pick(rng, list(WALL_COLOURS)),
            floor=_pick(rng, list(FLOOR_COLOURS)),
            floor_line=round(float(rng.uniform(0.5, 0.72)), 4),
            texture=_pick(rng, TEXTURES),
            clutter=tuple(clutter),
        ))
    return cameras


def assign_splits(config: SyntheticConfig) -> list[str]:
    """``train`` / ``test`` per pid: exactly ``config.num_train`` train identities.

    Look-alike groups are visited in a seeded random order and their members are assigned
    to ``train`` until it is full, so groups stay together (at most one group is cut); the
    test gallery thus keeps its look-alike distractors.
    """
    order = _rng(config, _STREAM_SPLIT).permutation(config.num_groups)
    pids = [pid for g in order for pid in range(int(g) * config.group_size,
                                                min((int(g) + 1) * config.group_size, config.num_identities))]
    splits = ["test"] * config.num_identities
    for pid in pids[: config.num_train]:
        splits[pid] = "train"
    return splits


# --------------------------------------------------------------------------------------------
# drawing
# --------------------------------------------------------------------------------------------


def _shade(colour: Sequence[int], factor: float) -> RGB:
    return tuple(int(max(0, min(255, round(v * factor)))) for v in colour)  # type: ignore[return-value]


class _Painter:
    """Draws shapes on the canvas and keeps a mask of the visible patterned (top) garment."""

    def __init__(self, canvas: Image.Image) -> None:
        self.draw = ImageDraw.Draw(canvas)
        self.top_mask = Image.new("L", canvas.size, 0)
        self.mask_draw = ImageDraw.Draw(self.top_mask)

    def polygon(self, points: Sequence[tuple[float, float]], fill: RGB, top: bool = False) -> None:
        self.draw.polygon(points, fill=fill)
        self.mask_draw.polygon(points, fill=255 if top else 0)

    def ellipse(self, box: Sequence[float], fill: RGB, top: bool = False) -> None:
        x0, y0, x1, y1 = box
        box = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
        self.draw.ellipse(box, fill=fill)
        self.mask_draw.ellipse(box, fill=255 if top else 0)

    def rect(self, box: Sequence[float], fill: RGB, top: bool = False) -> None:
        x0, y0, x1, y1 = box
        box = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
        self.draw.rectangle(box, fill=fill)
        self.mask_draw.rectangle(box, fill=255 if top else 0)

    def line(self, points: Sequence[tuple[float, float]], fill: RGB, width: float) -> None:
        w = max(1, int(round(width)))
        self.draw.line(points, fill=fill, width=w)
        self.mask_draw.line(points, fill=0, width=w)

    def limb(self, p0: tuple[float, float], p1: tuple[float, float], r0: float, r1: float,
             fill: RGB, top: bool = False) -> None:
        """A tapered segment with round ends."""
        dx, dy = p1[0] - p0[0], p1[1] - p0[1]
        n = math.hypot(dx, dy) or 1.0
        nx, ny = -dy / n, dx / n
        self.polygon([(p0[0] + nx * r0, p0[1] + ny * r0), (p1[0] + nx * r1, p1[1] + ny * r1),
                      (p1[0] - nx * r1, p1[1] - ny * r1), (p0[0] - nx * r0, p0[1] - ny * r0)], fill, top)
        self.ellipse((p0[0] - r0, p0[1] - r0, p0[0] + r0, p0[1] + r0), fill, top)
        self.ellipse((p1[0] - r1, p1[1] - r1, p1[0] + r1, p1[1] + r1), fill, top)


def render_background(camera: CameraSpec, size: tuple[int, int]) -> Image.Image:
    """Wall, floor line, texture and clutter of a camera at ``size = (width, height)``."""
    w, h = size
    wall, floor = WALL_COLOURS[camera.wall], FLOOR_COLOURS[camera.floor]
    img = Image.new("RGB", size, wall)
    draw = ImageDraw.Draw(img)
    fy = camera.floor_line * h
    unit = h / 128.0
    if camera.texture == "gradient":
        arr = np.asarray(img, dtype=np.float32).copy()
        ramp = np.linspace(1.12, 0.88, h, dtype=np.float32)[:, None, None]
        img = Image.fromarray(np.clip(arr * ramp, 0, 255).astype(np.uint8))
        draw = ImageDraw.Draw(img)
    elif camera.texture == "panels":
        step = 22 * unit
        for x in np.arange(step / 2, w, step):
            draw.line([(x, 0), (x, fy)], fill=_shade(wall, 0.82), width=max(1, int(unit)))
    elif camera.texture == "bricks":
        step = 9 * unit
        for i, y in enumerate(np.arange(0, fy, step)):
            draw.line([(0, y), (w, y)], fill=_shade(wall, 0.8), width=max(1, int(unit)))
            for x in np.arange((i % 2) * step, w, 2 * step):
                draw.line([(x, y), (x, min(y + step, fy))], fill=_shade(wall, 0.8), width=max(1, int(unit)))
    draw.rectangle((0, fy, w, h), fill=floor)
    draw.line([(0, fy), (w, fy)], fill=_shade(floor, 0.7), width=max(1, int(2 * unit)))
    for y in np.arange(fy + 10 * unit, h, 14 * unit):  # floor seams
        draw.line([(0, y), (w, y)], fill=_shade(floor, 0.9), width=max(1, int(unit)))
    for item in camera.clutter:
        col = tuple(item["colour"])
        x, s = item["x"] * w, item["size"] * unit
        if item["kind"] == "pole":
            draw.rectangle((x - 2 * s, fy - 70 * s, x + 2 * s, fy + 6 * s), fill=col)
        elif item["kind"] == "door":
            draw.rectangle((x - 12 * s, fy - 52 * s, x + 12 * s, fy), fill=_shade(col, 0.6))
            draw.rectangle((x - 10 * s, fy - 50 * s, x + 10 * s, fy), fill=col)
        elif item["kind"] == "plant":
            draw.rectangle((x - 5 * s, fy - 4 * s, x + 5 * s, fy + 8 * s), fill=(120, 75, 50))
            draw.ellipse((x - 10 * s, fy - 24 * s, x + 10 * s, fy - 2 * s), fill=(50, 120, 55))
        elif item["kind"] == "bench":
            draw.rectangle((x - 16 * s, fy + 2 * s, x + 16 * s, fy + 6 * s), fill=col)
            draw.rectangle((x - 14 * s, fy + 6 * s, x - 12 * s, fy + 14 * s), fill=_shade(col, 0.6))
            draw.rectangle((x + 12 * s, fy + 6 * s, x + 14 * s, fy + 14 * s), fill=_shade(col, 0.6))
        else:  # sign
            draw.rectangle((x - 8 * s, fy - 44 * s, x + 8 * s, fy - 32 * s), fill=col)
            draw.rectangle((x - 6 * s, fy - 40 * s, x + 6 * s, fy - 38 * s), fill=_shade(col, 1.6))
    return img


def _sample_pose(rng: np.random.Generator) -> dict[str, float]:
    """Per-image pose and framing jitter (offsets in output pixels)."""
    return {
        "stride": float(rng.uniform(0.0, 0.42)),
        "arm_swing": float(rng.uniform(0.0, 0.38)),
        "phase": float(rng.choice([-1.0, 1.0])),
        "facing": float(rng.choice([-1.0, 1.0])),
        "dx": float(rng.uniform(-2.0, 2.0)),
        "dy": float(rng.uniform(-1.5, 1.5)),
        "scale": float(rng.uniform(0.97, 1.03)),
        "gain": float(rng.uniform(0.95, 1.05)),
    }


def _pattern_image(kind: str, period: float, colours: Sequence[Sequence[int]], shape: tuple[int, int],
                   origin: tuple[float, float], squeeze: float) -> np.ndarray:
    """Zero-mean two-colour pattern (H, W, 3) float32 anchored to the body at ``origin``."""
    h, w = shape
    ys = (np.arange(h, dtype=np.float32) - origin[1])[:, None]
    xs = ((np.arange(w, dtype=np.float32) - origin[0]) / squeeze)[None, :]
    half = period / 2.0
    if kind == "hstripes":
        s = np.broadcast_to(np.floor(ys / half) % 2, (h, w))
    elif kind == "vstripes":
        s = np.broadcast_to(np.floor(xs / half) % 2, (h, w))
    elif kind == "checks":
        s = (np.floor(ys / half) + np.floor(xs / half)) % 2
    elif kind == "diagonal":
        s = np.floor((xs + ys) / (half * 1.2)) % 2
    elif kind == "dots":
        py, px = (ys % period) - half, (xs % period) - half
        s = ((py * py + px * px) <= (0.3 * period) ** 2).astype(np.float32)
    else:
        raise ValueError(f"unknown pattern {kind!r}")
    s = np.asarray(s, dtype=np.float32)
    c1, c2 = (np.asarray(c, dtype=np.float32) for c in colours)
    base, d = (c1 + c2) / 2.0, (c1 - c2) / 2.0
    p = float(s.mean())  # coverage of the "on" colour; weights keep the mean at ``base``
    weights = np.where(s > 0.5, 2.0 * (1.0 - p), -2.0 * p)
    return base + weights[..., None] * d


def _emblem(p: _Painter, shape: str, cx: float, cy: float, r: float, sx: float, fill: RGB) -> None:
    """Chest emblem of half-size ``r`` (horizontal squeeze ``sx``)."""
    def pts(seq: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
        return [(cx + x * r * sx, cy + y * r) for x, y in seq]

    if shape == "circle":
        p.ellipse((cx - r * sx, cy - r, cx + r * sx, cy + r), fill)
    elif shape == "square":
        p.rect((cx - 0.85 * r * sx, cy - 0.85 * r, cx + 0.85 * r * sx, cy + 0.85 * r), fill)
    elif shape == "triangle":
        p.polygon(pts([(0, -1), (1, 0.85), (-1, 0.85)]), fill)
    elif shape == "diamond":
        p.polygon(pts([(0, -1.1), (1.1, 0), (0, 1.1), (-1.1, 0)]), fill)
    elif shape == "cross":
        p.rect((cx - 0.33 * r * sx, cy - r, cx + 0.33 * r * sx, cy + r), fill)
        p.rect((cx - r * sx, cy - 0.33 * r, cx + r * sx, cy + 0.33 * r), fill)
    elif shape == "star":
        star = []
        for i in range(10):
            a = -math.pi / 2 + i * math.pi / 5
            rad = 1.15 if i % 2 == 0 else 0.48
            star.append((rad * math.cos(a), rad * math.sin(a)))
        p.polygon(pts(star), fill)
    else:
        raise ValueError(f"unknown emblem shape {shape!r}")


_SEGMENTS = {  # seven-segment digits: a b c d e f g
    0: "abcdef", 1: "bc", 2: "abged", 3: "abgcd", 4: "fgbc",
    5: "afgcd", 6: "afgedc", 7: "abc", 8: "abcdefg", 9: "abcfgd",
}


def _digit(p: _Painter, digit: int, x0: float, y0: float, w: float, h: float, stroke: float, fill: RGB) -> None:
    """A thin-stroke seven-segment digit in the box (x0, y0, x0 + w, y0 + h)."""
    x1, ym, y1 = x0 + w, y0 + h / 2, y0 + h
    seg = {"a": [(x0, y0), (x1, y0)], "b": [(x1, y0), (x1, ym)], "c": [(x1, ym), (x1, y1)],
           "d": [(x0, y1), (x1, y1)], "e": [(x0, ym), (x0, y1)], "f": [(x0, y0), (x0, ym)],
           "g": [(x0, ym), (x1, ym)]}
    for s in _SEGMENTS[digit]:
        p.line(seg[s], fill, stroke)


def _draw_person(canvas: Image.Image, ident: IdentitySpec, view: str, pose: dict[str, float],
                 cx: float, top: float, hp: float, shadow: RGB) -> tuple[_Painter, tuple[float, float], float]:
    """Draw one pedestrian; returns the painter, the pattern origin and the horizontal squeeze."""
    co, fi = ident.coarse, ident.fine
    p = _Painter(canvas)
    side = view == "side"
    f = pose["facing"] if side else 1.0  # +1: facing right (side view)
    sq = 0.58 if side else 1.0
    build = co["build"]

    def X(u: float) -> float:
        return cx + u * hp

    def Y(v: float) -> float:
        return top + v * hp

    skin = SKIN_TONES[co["skin"]]
    hair = HAIR_COLOURS[co["hair_colour"]]
    top_c = TOP_COLOURS[co["top_colour"]]
    bot_c = BOTTOM_COLOURS[co["bottom_colour"]]
    shoe_c = SHOE_COLOURS[co["shoe_colour"]]
    trim_c = DETAIL_COLOURS[fi["shoe_trim"]]
    bag_c = ACCESSORY_COLOURS[co["bag_colour"]] if co["bag_colour"] else None

    sh = 0.118 * build * sq  # shoulder half-width
    wa = 0.092 * build * sq  # waist half-width
    hip = 0.098 * build * sq
    lean = 0.012 * f if side else 0.0  # walking lean
    y_sh, y_waist, y_hip, y_ankle = 0.185, 0.47, 0.53, 0.945
    leg_len = y_ankle - y_hip
    stride, swing, phase = pose["stride"], pose["arm_swing"], pose["phase"]

    # shadow on the floor
    p.draw.ellipse((X(-0.16), Y(0.975), X(0.16), Y(1.02)), fill=shadow)

    # ---- legs -------------------------------------------------------------------------
    def leg_points(sign: float) -> tuple[tuple[float, float], tuple[float, float], tuple[float, float]]:
        if side:
            a = sign * stride  # thigh angle from vertical, positive = forward
            hip_pt = (X(0.0), Y(y_hip))
            knee = (hip_pt[0] + f * math.sin(a) * 0.5 * leg_len * hp, hip_pt[1] + math.cos(a) * 0.5 * leg_len * hp)
            b = a * 0.4 if sign > 0 else a - 0.35 * stride / 0.42
            ankle = (knee[0] + f * math.sin(b) * 0.5 * leg_len * hp, knee[1] + math.cos(b) * 0.5 * leg_len * hp)
        else:
            spread = 0.05 * build + 0.012 * stride
            hip_pt = (X(sign * 0.045 * build), Y(y_hip))
            rise = 0.03 * stride * (1 if sign == phase else 0)  # foreshortened back foot
            ankle = (X(sign * spread), Y(y_ankle - rise))
            knee = ((hip_pt[0] + ankle[0]) / 2, (hip_pt[1] + ankle[1]) / 2)
        return hip_pt, knee, ankle

    order = (-phase, phase) if side else (-1.0, 1.0)
    legs = {s: leg_points(s) for s in order}
    for i, s in enumerate(order):
        depth = 0.85 if side and i == 0 else 1.0
        hip_pt, knee, ankle = legs[s]
        leg_skin, leg_bot = _shade(skin, depth), _shade(bot_c, depth)
        if co["bottom_style"] == "trousers":
            p.limb(hip_pt, knee, 0.046 * hp, 0.038 * hp, leg_bot)
            p.limb(knee, ankle, 0.038 * hp, 0.031 * hp, leg_bot)
        else:
            p.limb(hip_pt, knee, 0.036 * hp, 0.029 * hp, leg_skin)
            p.limb(knee, ankle, 0.029 * hp, 0.022 * hp, leg_skin)
            if co["bottom_style"] == "shorts":
                mid = (hip_pt[0] + (knee[0] - hip_pt[0]) * 0.75, hip_pt[1] + (knee[1] - hip_pt[1]) * 0.75)
                p.limb(hip_pt, mid, 0.047 * hp, 0.042 * hp, leg_bot)
        # shoe with a sole trim (fine detail)
        fw = 0.038 * hp
        toe = f * 0.035 * hp if side else 0.0
        sx0, sx1 = ankle[0] - fw + min(toe, 0) * 0.4, ankle[0] + fw + max(toe, 0)
        sy0, sy1 = ankle[1] - 0.012 * hp, ankle[1] + 0.05 * hp
        p.ellipse((sx0, sy0, sx1, sy1), _shade(shoe_c, depth))
        p.rect((sx0 + 0.3 * fw, sy1 - 0.017 * hp, sx1 - 0.3 * fw, sy1 - 0.008 * hp), _shade(trim_c, depth))

    # pelvis / skirt
    if co["bottom_style"] == "skirt":
        flare = 0.14 * build * sq + 0.02 * stride
        p.polygon([(X(-wa + lean), Y(y_waist - 0.01)), (X(wa + lean), Y(y_waist - 0.01)),
                   (X(flare), Y(0.7)), (X(-flare), Y(0.7))], bot_c)
    else:
        p.polygon([(X(-wa + lean), Y(y_waist - 0.01)), (X(wa + lean), Y(y_waist - 0.01)),
                   (X(hip), Y(y_hip + 0.02)), (X(-hip), Y(y_hip + 0.02))], bot_c)

    # ---- arms ---------------------------------------------------------------------------
    arm_len = 0.31

    def draw_arm(sign: float, depth: float) -> None:
        if side:
            a = sign * swing
            sx_, sy_ = X(lean * 0.5), Y(y_sh + 0.01)
            bend = 0.25
            elbow = (sx_ + f * math.sin(a) * 0.5 * arm_len * hp, sy_ + math.cos(a) * 0.5 * arm_len * hp)
            hand = (elbow[0] + f * math.sin(a + bend) * 0.5 * arm_len * hp,
                    elbow[1] + math.cos(a + bend) * 0.5 * arm_len * hp)
        else:
            a = 0.1 + 0.03 * swing
            length = arm_len * (1.0 - 0.12 * swing * (1 if sign == phase else 0.3))
            sx_, sy_ = X(sign * (sh - 0.022)), Y(y_sh + 0.01)
            elbow = (sx_ + sign * math.sin(a) * 0.5 * length * hp, sy_ + math.cos(a) * 0.5 * length * hp)
            hand = (sx_ + sign * math.sin(a * 0.8) * length * hp, sy_ + math.cos(a * 0.8) * length * hp)
        arm_skin, arm_top = _shade(skin, depth), _shade(top_c, depth)
        p.limb((sx_, sy_), elbow, 0.03 * hp, 0.025 * hp, arm_skin)
        p.limb(elbow, hand, 0.025 * hp, 0.02 * hp, arm_skin)
        if co["sleeves"] == "long":
            p.limb((sx_, sy_), elbow, 0.034 * hp, 0.029 * hp, arm_top, top=True)
            cuff = (elbow[0] + (hand[0] - elbow[0]) * 0.8, elbow[1] + (hand[1] - elbow[1]) * 0.8)
            p.limb(elbow, cuff, 0.029 * hp, 0.025 * hp, arm_top, top=True)
        else:
            mid = (sx_ + (elbow[0] - sx_) * 0.6, sy_ + (elbow[1] - sy_) * 0.6)
            p.limb((sx_, sy_), mid, 0.036 * hp, 0.032 * hp, arm_top, top=True)
        p.ellipse((hand[0] - 0.024 * hp, hand[1] - 0.02 * hp, hand[0] + 0.024 * hp, hand[1] + 0.028 * hp),
                  arm_skin)

    if side:
        draw_arm(phase, 0.85)  # far arm swings opposite to the near leg

    # long hair behind the shoulders (front / side)
    if co["hair_style"] == "long" and view != "back":
        hx = -f * 0.02 if side else 0.0
        p.rect((X(hx - 0.058), Y(0.07), X(hx + 0.058), Y(0.215)), hair)

    # backpack seen from the front / side sits behind the torso
    if co["bag"] == "backpack" and side:
        p.rect((X(lean - f * (sh + 0.055)), Y(0.2), X(lean - f * (sh - 0.01)), Y(0.42)), bag_c)

    # ---- torso (patterned top) -----------------------------------------------------------------
    p.polygon([(X(-sh * 0.78 + lean), Y(y_sh - 0.03)), (X(sh * 0.78 + lean), Y(y_sh - 0.03)),
               (X(sh + lean), Y(y_sh + 0.01)), (X(wa + lean * 0.3), Y(y_waist + 0.025)),
               (X(-wa + lean * 0.3), Y(y_waist + 0.025)), (X(-sh + lean), Y(y_sh + 0.01))], top_c, top=True)
    if not side:
        for s in (-1.0, 1.0):
            draw_arm(s, 1.0)

    if co["belt_colour"] is not None:
        belt = ACCESSORY_COLOURS[co["belt_colour"]]
        p.rect((X(-wa - 0.004 + lean * 0.3), Y(y_waist), X(wa + 0.004 + lean * 0.3), Y(y_waist + 0.02)), belt)
        if view == "front" or side:
            bx = X(lean * 0.3 + (f * wa * 0.7 if side else 0.0))
            br = 0.016 * hp
            p.rect((bx - br * (0.6 if side else 1.0), Y(y_waist - 0.004), bx + br * (0.6 if side else 1.0),
                    Y(y_waist + 0.024)), BUCKLE_COLOURS[fi["buckle"]])

    # chest emblem (front, squeezed in the side view) / jersey number (back)
    if view == "front" or side:
        ex = X(lean + (f * sh * 0.35 if side else 0.045 * build))
        _emblem(p, fi["emblem_shape"], ex, Y(0.255), 0.026 * hp, 0.6 if side else 1.0,
                DETAIL_COLOURS[fi["emblem_colour"]])
    else:
        num_c = DETAIL_COLOURS[fi["back_number_colour"]]
        dw, dh, gap = 0.03 * hp, 0.075 * hp, 0.014 * hp
        x0 = X(0.0) - dw - gap / 2
        y0 = Y(0.265 if co["bag"] != "backpack" else 0.22)
        stroke = 0.009 * hp
        tens, ones = divmod(fi["back_number"], 10)
        if co["bag"] == "backpack":  # the number is printed on the backpack's flap
            p.rect((X(-sh * 0.62), Y(0.205), X(sh * 0.62), Y(0.4)), bag_c)
            p.rect((X(-sh * 0.62), Y(0.205), X(sh * 0.62), Y(0.218)), _shade(bag_c, 0.7))
        _digit(p, tens, x0, y0, dw, dh, stroke, num_c)
        _digit(p, ones, x0 + dw + gap, y0, dw, dh, stroke, num_c)

    # bag straps / shoulder bag
    if co["bag"] == "backpack" and view == "front":
        for s in (-1.0, 1.0):
            p.line([(X(s * sh * 0.55), Y(y_sh - 0.025)), (X(s * sh * 0.6), Y(0.36))], bag_c, 0.018 * hp)
    elif co["bag"] == "shoulder_bag":
        p.line([(X(-sh * 0.7 + lean), Y(y_sh - 0.02)), (X(wa + lean), Y(0.44))], bag_c, 0.014 * hp)
        bx = X(wa * (0.2 if side else 1.0) + 0.02)
        p.rect((bx - 0.045 * hp, Y(0.42), bx + 0.045 * hp, Y(0.52)), bag_c)

    if side:
        draw_arm(-phase, 1.0)

    # ---- head ---------------------------------------------------------------------------------
    p.rect((X(-0.022 + lean), Y(0.12), X(0.022 + lean), Y(y_sh - 0.01)), _shade(skin, 0.9))  # neck
    hcx, hcy, rx, ry = X(lean * 1.5), Y(0.078), 0.05 * hp, 0.064 * hp
    cap = ACCESSORY_COLOURS[co["cap_colour"]] if co["cap_colour"] else None
    if view == "back":
        p.ellipse((hcx - rx, hcy - ry, hcx + rx, hcy + ry), skin)
        p.ellipse((hcx - rx * 1.06, hcy - ry * 1.06, hcx + rx * 1.06, hcy + ry * 1.02), hair)
        if co["hair_style"] == "long":
            p.rect((hcx - rx * 1.1, hcy, hcx + rx * 1.1, Y(0.235)), hair)
        elif co["hair_style"] == "bun":
            p.ellipse((hcx - rx * 0.45, hcy - ry * 0.75, hcx + rx * 0.45, hcy - ry * 0.05), _shade(hair, 0.8))
    else:
        hx = hcx - f * rx * 0.12 if side else hcx
        p.ellipse((hx - rx * 1.06, hcy - ry * 1.06, hx + rx * 1.06, hcy + ry * 0.35), hair)
        if side:
            face = (hcx + f * rx * 0.1 - rx * 0.8, hcy - ry * 0.6, hcx + f * rx * 0.1 + rx * 0.8, hcy + ry)
            p.ellipse(face, skin)
            p.ellipse((hcx + f * rx * 0.85 - 0.01 * hp, hcy, hcx + f * rx * 0.85 + 0.01 * hp, hcy + 0.02 * hp), skin)
        else:
            p.ellipse((hcx - rx * 0.9, hcy - ry * 0.6, hcx + rx * 0.9, hcy + ry), skin)
        if co["hair_style"] == "bun":
            bx = hcx - f * rx * 0.9 if side else hcx
            by = hcy - ry * (0.5 if side else 1.1)
            p.ellipse((bx - rx * 0.4, by - ry * 0.35, bx + rx * 0.4, by + ry * 0.35), hair)
        eye_y, er = hcy + ry * 0.1, 0.011 * hp
        eyes = [hcx + f * rx * 0.55] if side else [hcx - rx * 0.4, hcx + rx * 0.4]
        for ex in eyes:
            p.ellipse((ex - er, eye_y - er, ex + er, eye_y + er), (35, 25, 25))
        if fi["glasses"]:
            gr = 0.02 * hp
            for ex in eyes:
                p.line([(ex - gr, eye_y - gr * 0.7), (ex + gr, eye_y - gr * 0.7), (ex + gr, eye_y + gr * 0.7),
                        (ex - gr, eye_y + gr * 0.7), (ex - gr, eye_y - gr * 0.7)], (20, 20, 20), 0.007 * hp)
            if not side:
                p.line([(eyes[0] + gr, eye_y - gr * 0.3), (eyes[1] - gr, eye_y - gr * 0.3)], (20, 20, 20),
                       0.007 * hp)
    if cap is not None:
        p.ellipse((hcx - rx * 1.1, hcy - ry * 1.12, hcx + rx * 1.1, hcy - ry * 0.05), cap)
        if view == "front":
            p.rect((hcx - rx * 1.1, hcy - ry * 0.35, hcx + rx * 1.1, hcy - ry * 0.15), _shade(cap, 0.75))
        elif side:
            p.rect((hcx, hcy - ry * 0.4, hcx + f * rx * 1.7, hcy - ry * 0.2), _shade(cap, 0.75))

    return p, (X(lean), Y(y_sh - 0.03)), sq


def render_image(config: SyntheticConfig, identity: IdentitySpec, camera: CameraSpec, k: int,
                 background: Image.Image | None = None, *, pose_from: int | None = None) -> np.ndarray:
    """Render image ``k`` of ``identity`` in ``camera`` as a (height, width, 3) uint8 array.

    Args:
        config: dataset configuration (size, seed).
        identity: attributes from :func:`sample_identities`.
        camera: camera from :func:`sample_cameras`.
        k: image index within (identity, camera); seeds the pose / framing / noise.
        background: optional cached ``render_background(camera, supersampled size)``.
        pose_from: pid whose random stream gives the pose, framing and noise (default
            ``identity.pid``); rendering two identities with the same ``pose_from`` isolates
            what differs between them, e.g. the fine detail of look-alikes.
    """
    s = SUPERSAMPLE
    size = (config.width * s, config.height * s)
    if background is None:
        background = render_background(camera, size)
    pid = identity.pid if pose_from is None else int(pose_from)
    rng = np.random.default_rng([int(config.seed), _STREAM_IMAGE, pid, camera.camid, int(k)])
    pose = _sample_pose(rng)
    canvas = background.copy()
    hs = float(size[1])
    hp = camera.height_fraction * hs * identity.coarse["height_scale"] * pose["scale"]
    foot = 0.5 * hs * (1.0 + camera.height_fraction) + pose["dy"] * s  # sole, ~centred vertically
    top = foot - hp
    cx = size[0] / 2.0 + pose["dx"] * s
    shadow = _shade(FLOOR_COLOURS[camera.floor], 0.72)
    painter, origin, squeeze = _draw_person(canvas, identity, camera.view, pose, cx, top, hp, shadow)

    fine = identity.fine
    box = painter.top_mask.getbbox()
    if fine["pattern"] != "plain" and box is not None:  # numpy work only inside the garment's box
        x0, y0 = box[:2]
        crop = np.asarray(canvas.crop(box))
        mask = np.asarray(painter.top_mask.crop(box)) > 127
        pattern = _pattern_image(fine["pattern"], fine["pattern_period_px"] * s, fine["pattern_rgb"],
                                 crop.shape[:2], (origin[0] - x0, origin[1] - y0), squeeze)
        pattern = np.clip(np.rint(pattern), 0, 255).astype(np.uint8)
        canvas.paste(Image.fromarray(np.where(mask[..., None], pattern, crop), "RGB"), box[:2])

    # supersampled -> output resolution (box filter), then photometrics and noise
    arr = np.asarray(canvas.reduce(s), dtype=np.float32)
    w = config.width
    # illumination: a horizontal light gradient centred on the person, gain, colour cast, gamma
    light = 1.0 + camera.side_light * np.clip((np.arange(w, dtype=np.float32) - cx / s) / (0.15 * hp / s), -1, 1)
    gain = camera.gain * pose["gain"] * np.asarray(camera.cast, dtype=np.float32)
    x = np.clip(arr * light[None, :, None] * (gain / 255.0), 0.0, 1.0) ** camera.gamma * 255.0
    x += rng.normal(0.0, camera.noise_sigma, size=x.shape).astype(np.float32)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------------------------


def _atomic_write(path: pathlib.Path, data: bytes) -> None:
    """Write ``data`` to a temporary name next to ``path``, then ``os.replace`` it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr, "RGB").save(buf, format="PNG", compress_level=3)
    return buf.getvalue()


def image_name(pid: int, camid: int, k: int) -> str:
    """Relative path of an image inside the dataset folder."""
    return f"{IMAGES_DIRNAME}/{pid:04d}_c{camid}_{k:02d}.png"


def generate_synthetic(out_dir: str | os.PathLike, config: SyntheticConfig, *, progress: bool = True) -> pathlib.Path:
    """Draw the dataset into out_dir and return the path of its manifest CSV.

    Writes ``images/*.png``, then ``attributes.json``, then ``manifest.csv`` (each atomically),
    removing any previous manifest first, so an interrupted run never looks complete.

    Args:
        out_dir: destination folder (created if needed).
        config: dataset configuration; the same config gives byte-identical files.
        progress: show a ``tqdm`` progress bar.
    """
    from tqdm.auto import tqdm

    from ..utils.progress import bars_off

    config.validate()
    out = pathlib.Path(out_dir)
    (out / IMAGES_DIRNAME).mkdir(parents=True, exist_ok=True)
    manifest = out / MANIFEST_NAME
    if manifest.exists():
        manifest.unlink()

    identities = sample_identities(config)
    cameras = sample_cameras(config)
    splits = assign_splits(config)
    ss_size = (config.width * SUPERSAMPLE, config.height * SUPERSAMPLE)
    backgrounds = [render_background(cam, ss_size) for cam in cameras]

    rows: list[tuple[str, int, int, str]] = []
    total = config.num_identities * config.num_cameras * config.images_per_camera
    with tqdm(total=total, disable=bars_off(progress), desc="synthetic re-ID", unit="img") as bar:
        for ident in identities:
            for cam in cameras:
                for k in range(config.images_per_camera):
                    arr = render_image(config, ident, cam, k, backgrounds[cam.camid])
                    rel = image_name(ident.pid, cam.camid, k)
                    _atomic_write(out / rel, _png_bytes(arr))
                    rows.append((rel, ident.pid, cam.camid, splits[ident.pid]))
                    bar.update(1)

    attributes = {
        "config": dataclasses.asdict(config),
        "views": {str(c.camid): c.view for c in cameras},
        "coarse_attributes": ["top_colour", "sleeves", "bottom_style", "bottom_colour", "skin", "hair_colour",
                              "hair_style", "cap_colour", "shoe_colour", "belt_colour", "bag", "bag_colour",
                              "height_scale", "build"],
        "fine_attributes": ["pattern", "pattern_period_px", "pattern_rgb", "emblem_shape", "emblem_colour",
                            "back_number", "back_number_colour", "buckle", "shoe_trim", "glasses"],
        "cameras": [c.to_dict() for c in cameras],
        "identities": {str(i.pid): {"group": i.group, "split": splits[i.pid], "coarse": i.coarse, "fine": i.fine}
                       for i in identities},
        "palettes": {name: {k: list(v) for k, v in pal.items()} for name, pal in (
            ("top", TOP_COLOURS), ("bottom", BOTTOM_COLOURS), ("skin", SKIN_TONES), ("hair", HAIR_COLOURS),
            ("shoe", SHOE_COLOURS), ("accessory", ACCESSORY_COLOURS), ("detail", DETAIL_COLOURS),
            ("buckle", BUCKLE_COLOURS), ("wall", WALL_COLOURS), ("floor", FLOOR_COLOURS))},
    }
    _atomic_write(out / ATTRIBUTES_NAME, (json.dumps(attributes, indent=1) + "\n").encode())

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(MANIFEST_COLUMNS)
    writer.writerows(rows)
    _atomic_write(manifest, buf.getvalue().encode())
    return manifest


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m lib.data.synthetic OUT_DIR [--num-identities N ...]``."""
    parser = argparse.ArgumentParser(prog="python -m lib.data.synthetic",
                                     description="Draw the embedded synthetic cross-resolution re-ID dataset.")
    parser.add_argument("out_dir", help="destination folder")
    for field in dataclasses.fields(SyntheticConfig):
        parser.add_argument(f"--{field.name.replace('_', '-')}", type=type(field.default), default=field.default,
                            help=f"(default: {field.default})")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    try:
        config = SyntheticConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(SyntheticConfig)})
    except ValueError as exc:
        parser.error(str(exc))
    manifest = generate_synthetic(args.out_dir, config, progress=not args.no_progress)
    print(manifest)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
