"""The feature file: query and gallery features with their labels in one ``.npz`` that loads without pickle.

A file is a numpy ``.npz`` archive (``np.savez``) of plain arrays — no object arrays, so ``np.load(path,
allow_pickle=False)`` reads it and loading someone else's file never runs code. Required (what another toolbox's
user writes with numpy, e.g. from torchreid's or fast-reid's ``qf, q_pids, q_camids, gf, …``):

==============  =========================  =====================================================================
key             dtype                      shape / content
==============  =========================  =====================================================================
``qf``          float16 / float32 / 64     (num_query, D): one feature row per query image
``gf``          float16 / float32 / 64     (num_gallery, D): the same D
``q_pids``      integer                    (num_query,) identity of each query
``g_pids``      integer                    (num_gallery,)
``q_camids``    integer                    (num_query,) camera of each query
``g_camids``    integer                    (num_gallery,)
==============  =========================  =====================================================================

Optional:

==============  ===========  =============================================================================
``q_paths``     str (``U``)  (num_query,) image path of each query; ``g_paths`` likewise for the gallery
``metric``      str, 0-d     JSON object ``{"distance": NAME, **params}``, NAME in :data:`lib.metrics.DISTANCES`:
                             ``cosine`` (``normalize``, default true: L2-normalise the rows first), ``euclidean``
                             (squared, as torchreid's; ``normalize`` default false), ``ftwa`` (FTWA's weighted
                             distance, ``match``, ``weight_floor``). Absent: ``{"distance": "cosine"}``
``protocol``    str, 0-d     JSON object: ``{"name": "multi_shot"}`` (the Market-1501 protocol: a query's
                             same-identity same-camera gallery images removed, as torchreid's and fast-reid's
                             evaluators do; the default when absent) or ``{"name": "single_shot",
                             "num_repeats": N, "seed": S}`` (one gallery image per identity, redrawn N times)
``run``         str, 0-d     JSON object: where the features come from (``python -m lib.features export``: the
                             method, stage, output, split, the run's identity and its recorded metrics)
``format``      str, 0-d     ``lib.features/1``
==============  ===========  =============================================================================

A 0-d string array is ``np.array(json.dumps(obj))``. Other keys are ignored (and named when the file is read).
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..metrics.ranking import _as_labels
from ..utils.io import atomic_write_bytes

__all__ = ["FORMAT", "REQUIRED", "OPTIONAL", "FeatureFileError", "FeatureFile", "DEFAULT_METRIC", "DEFAULT_PROTOCOL"]

FORMAT = "lib.features/1"
REQUIRED = ("qf", "gf", "q_pids", "g_pids", "q_camids", "g_camids")
OPTIONAL = ("q_paths", "g_paths", "metric", "protocol", "run", "format")
DEFAULT_METRIC: dict[str, Any] = {"distance": "cosine"}
DEFAULT_PROTOCOL: dict[str, Any] = {"name": "multi_shot"}
_JSON_KEYS = ("metric", "protocol", "run")


class FeatureFileError(ValueError):
    """A feature file that cannot be read or does not hold what the format says (the message names the file, the
    key, what was expected and what was found)."""


@dataclass
class FeatureFile:
    """The contents of a feature file (see the module docstring); :meth:`load` checks every key, :meth:`save`
    writes one."""

    qf: np.ndarray
    gf: np.ndarray
    q_pids: np.ndarray
    g_pids: np.ndarray
    q_camids: np.ndarray
    g_camids: np.ndarray
    q_paths: np.ndarray | None = None
    g_paths: np.ndarray | None = None
    metric: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_METRIC))
    protocol: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_PROTOCOL))
    run: dict[str, Any] | None = None
    ignored: tuple[str, ...] = ()  # keys of the file outside the format (set by load)

    @property
    def num_query(self) -> int:
        return int(self.qf.shape[0])

    @property
    def num_gallery(self) -> int:
        return int(self.gf.shape[0])

    def arrays(self) -> dict[str, np.ndarray]:
        """What :meth:`save` writes: every array of the format, JSON objects as 0-d strings."""
        out = {k: getattr(self, k) for k in REQUIRED}
        have = {k: getattr(self, k) for k in OPTIONAL if getattr(self, k, None) is not None}
        out |= {k: np.asarray(v, dtype=str) for k, v in have.items() if k in ("q_paths", "g_paths")}
        out |= {k: np.array(json.dumps(v, sort_keys=True)) for k, v in have.items() if k in _JSON_KEYS}
        return out | {"format": np.array(FORMAT)}

    def save(self, path: str | Path) -> Path:
        """Check the contents as :meth:`load` would, then write them to ``path`` atomically."""
        arrays = self.arrays()
        check_arrays(arrays, str(path))
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        return atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> FeatureFile:
        """Read and check a feature file (never unpickles).

        Raises:
            FeatureFileError: the file is missing or no ``.npz``, a required key is missing, an array is an object
                array or has the wrong dtype or shape, lengths disagree, a feature is not finite, a JSON key does
                not hold a JSON object — naming the file and key, with what was expected and what was found.
        """
        where = str(path)
        try:
            z = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            raise FeatureFileError(f"{where}: no such file") from None
        except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
            try:
                with open(path, "rb") as fh:
                    head = fh.read(16)
            except OSError:
                head = b""
            if head and not head.startswith((b"PK", b"\x93NUMPY")):  # numpy reads any other file as a pickle
                found = "a JSON file" if head.lstrip()[:1] in (b"{", b"[") else "another format"
                raise FeatureFileError(f"{where}: not a feature file (expected a numpy .npz archive of plain arrays, "
                                       f"as `python -m lib.features export` writes; found {found}, starting "
                                       f"{head[:12]!r})") from None
            raise FeatureFileError(f"{where}: not a feature file (expected a numpy .npz archive of plain arrays; "
                                   f"np.load(allow_pickle=False) says: {e})") from None
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise FeatureFileError(f"{where}: a single .npy array of shape {np.shape(z)}; expected an .npz archive "
                                   f"with the keys {', '.join(REQUIRED)} (np.savez)")
        with z:
            missing = [k for k in REQUIRED if k not in z.files]
            if missing:
                raise FeatureFileError(f"{where}: missing key {', '.join(map(repr, missing))} (required: "
                                       f"{', '.join(REQUIRED)}; found: {', '.join(z.files) or 'none'})")
            arrays = {k: _read(z, k, where) for k in z.files if k in REQUIRED + OPTIONAL}
            ignored = tuple(k for k in z.files if k not in REQUIRED + OPTIONAL)
        return cls(**check_arrays(arrays, where), ignored=ignored)


def _read(z: Any, key: str, where: str) -> np.ndarray:
    try:
        return z[key]
    except ValueError as e:
        if "allow_pickle" in str(e):  # an object array: refused rather than unpickled
            raise FeatureFileError(f"{where}: key {key!r} holds Python objects (a pickled object array), which are "
                                   f"never loaded; expected a plain numeric or string array ({e})") from None
        raise FeatureFileError(f"{where}: key {key!r} cannot be read (ValueError: {e})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as e:
        raise FeatureFileError(f"{where}: key {key!r} cannot be read ({type(e).__name__}: {e})") from None


def _features(a: np.ndarray, key: str, where: str, side: str) -> np.ndarray:
    if a.dtype not in (np.float16, np.float32, np.float64) or a.ndim != 2 or 0 in a.shape:
        raise FeatureFileError(f"{where}: key {key!r}: expected a non-empty 2-D float16/32/64 array (num_{side}, D), found "
                               f"dtype {a.dtype} shape {a.shape}")
    bad = ~np.isfinite(a).all(axis=1)
    if bad.any():
        raise FeatureFileError(f"{where}: key {key!r}: expected finite features, found NaN or inf in row "
                               f"{int(np.flatnonzero(bad)[0])} ({int(bad.sum())} rows in all)")
    return a.astype(np.float32) if a.dtype == np.float16 else a


def _labels(a: np.ndarray, key: str, where: str, n: int, of: str) -> np.ndarray:
    try:  # integers (or whole floats), one per row
        return _as_labels(a, f"key {key!r}", n, f"the rows of {of!r}")
    except ValueError as e:
        raise FeatureFileError(f"{where}: {e}") from None


def _paths(a: np.ndarray, key: str, where: str, n: int, of: str) -> np.ndarray:
    if a.dtype.kind != "U" or a.shape != (n,):
        raise FeatureFileError(f"{where}: key {key!r}: expected a string array of shape ({n},) (one per row of "
                               f"{of!r}), found dtype {a.dtype} shape {a.shape}")
    return a


def _json(a: np.ndarray, key: str, where: str) -> dict[str, Any]:
    if a.dtype.kind != "U" or a.shape != ():
        raise FeatureFileError(f"{where}: key {key!r}: expected a 0-d string holding a JSON object "
                               f"(np.array(json.dumps(...))), found dtype {a.dtype} shape {a.shape}")
    try:
        obj = json.loads(str(a))
    except json.JSONDecodeError as e:
        raise FeatureFileError(f"{where}: key {key!r}: not JSON ({e}): {str(a)[:80]!r}") from None
    if not isinstance(obj, dict):
        raise FeatureFileError(f"{where}: key {key!r}: expected a JSON object, found {type(obj).__name__} {obj!r:.80}")
    return obj


def check_arrays(arrays: dict[str, Any], where: str) -> dict[str, Any]:
    """The checked fields of a :class:`FeatureFile` from its arrays (see :meth:`FeatureFile.load`)."""
    a = {k: np.asarray(v) for k, v in arrays.items()}
    fmt = a.get("format")
    if fmt is not None and (fmt.dtype.kind != "U" or fmt.shape != () or str(fmt) != FORMAT):
        raise FeatureFileError(f"{where}: key 'format': expected {FORMAT!r}, found {fmt!r:.80} (a file of another "
                               "version of this format)")
    qf, gf = _features(a["qf"], "qf", where, "query"), _features(a["gf"], "gf", where, "gallery")
    if gf.shape[1] != qf.shape[1]:
        raise FeatureFileError(f"{where}: key 'gf': expected {qf.shape[1]} columns (the feature dimension of 'qf'), "
                               f"found shape {gf.shape}")
    nq, ng = qf.shape[0], gf.shape[0]
    out: dict[str, Any] = {
        "qf": qf, "gf": gf,
        "q_pids": _labels(a["q_pids"], "q_pids", where, nq, "qf"),
        "g_pids": _labels(a["g_pids"], "g_pids", where, ng, "gf"),
        "q_camids": _labels(a["q_camids"], "q_camids", where, nq, "qf"),
        "g_camids": _labels(a["g_camids"], "g_camids", where, ng, "gf"),
    }
    for key, n, of in (("q_paths", nq, "qf"), ("g_paths", ng, "gf")):
        if key in a:
            out[key] = _paths(a[key], key, where, n, of)
    for key in _JSON_KEYS:
        if key in a:
            out[key] = _json(a[key], key, where)
    return out
