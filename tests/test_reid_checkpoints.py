"""Issue #24 (checkpoints): torchreid / fast-reid / reid-strong-baseline model files load into the matching backbone;
files that pickle objects are refused without being unpickled; any timm model as a backbone (``timm:<model>``).

The checkpoints are built here from randomly initialised torchvision / timm models, keys renamed to each toolbox's
layout (lib/models/reid_checkpoints.py's docstring) and saved the way the toolbox saves them.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import timm
import torch
import torchvision

from lib.models import HRNetReID, build_backbone
from lib.models.reid_checkpoints import CheckpointLayout, checkpoint_layout
from lib.models.weights import read_checkpoint

NUM_IDS = 751  # Market-1501's training identities: the classifiers' size


@pytest.fixture(scope="module")
def resnet50_trunk() -> dict[str, torch.Tensor]:
    """torchvision ResNet-50's tensors with random weights and random BN statistics, ``fc`` left out."""
    torch.manual_seed(24)
    sd = torchvision.models.resnet50().state_dict()
    return {k: (torch.randn_like(v) if v.is_floating_point() else v + 7) for k, v in sd.items() if not k.startswith("fc.")}


def _optimizer_and_scheduler() -> tuple[dict, dict]:
    """State dicts of an optimiser after one step and of a multi-step schedule (a ``Counter`` inside)."""
    p = torch.nn.Parameter(torch.zeros(3))
    opt = torch.optim.Adam([p], lr=3.5e-4)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[40, 70])
    p.sum().backward()
    opt.step()
    sched.step()
    return opt.state_dict(), sched.state_dict()


def _assert_trunk_loaded(backbone, trunk: dict[str, torch.Tensor]) -> None:
    own = backbone.weights_target().state_dict()
    assert set(own) == set(trunk)
    for k, v in own.items():
        assert torch.equal(v, trunk[k]), k


def _load_quietly(name: str, path, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean load warns about nothing
        return build_backbone(name, weights=f"file:{path}", **kwargs)[0]


# --------------------------------------------------------------------------- torchreid
def test_torchreid_resnet50_checkpoint_loads_every_backbone_tensor(tmp_path, resnet50_trunk):
    """torchreid's resnet50_fc512 trained under DataParallel: ``{'state_dict', 'epoch', 'rank1', 'optimizer',
    'scheduler'}``, keys ``module.conv1.weight`` …, head ``fc.0`` (Linear 2048→512), ``fc.1`` (BatchNorm1d) and
    ``classifier``; ``rank1`` a numpy float, as torchreid's engine stores it."""
    head = {"fc.0.weight": torch.randn(512, 2048), "fc.0.bias": torch.randn(512), "fc.1.weight": torch.rand(512),
            "fc.1.bias": torch.randn(512), "fc.1.running_mean": torch.randn(512), "fc.1.running_var": torch.rand(512),
            "fc.1.num_batches_tracked": torch.tensor(9), "classifier.weight": torch.randn(NUM_IDS, 512),
            "classifier.bias": torch.randn(NUM_IDS)}
    optimizer, scheduler = _optimizer_and_scheduler()
    path = tmp_path / "model.pth.tar-60"
    torch.save({"state_dict": {"module." + k: v for k, v in {**resnet50_trunk, **head}.items()}, "epoch": 60,
                "rank1": np.float32(0.873), "optimizer": optimizer, "scheduler": scheduler}, path)
    backbone = _load_quietly("resnet50", path)
    _assert_trunk_loaded(backbone, resnet50_trunk)
    rep = backbone.load_report
    assert len(rep.loaded) == len(resnet50_trunk) and not (rep.missing or rep.unexpected or rep.mismatched)
    assert sorted(rep.ignored) == sorted(head) and rep.layout == ""
    assert rep.summary().splitlines()[0] == (f"{path}: loaded {len(resnet50_trunk)} tensors; missing 0, unexpected 0, "
                                             "shape mismatch 0, ignored 9")


def test_torchreid_resnet18_checkpoint_loads_into_the_timm_backbone(tmp_path):
    """timm's ResNet names its tensors as torchvision's, so a torchreid ResNet-18 fills ``timm:resnet18`` too."""
    torch.manual_seed(1)
    trunk = {k: v for k, v in torchvision.models.resnet18().state_dict().items() if not k.startswith("fc.")}
    path = tmp_path / "resnet18_market.pth"
    torch.save({"state_dict": {**trunk, "classifier.weight": torch.randn(NUM_IDS, 512)}, "rank1": np.float64(0.5)},
               path)
    backbone = _load_quietly("timm:resnet18", path)
    _assert_trunk_loaded(backbone, trunk)
    assert backbone.load_report.ignored == ["classifier.weight"]


# --------------------------------------------------------------------------- fast-reid
def _fast_reid_model(trunk: dict[str, torch.Tensor], classifier: str = "heads.weight") -> dict[str, torch.Tensor]:
    """fast-reid's Baseline: input buffers, ``backbone.*``, the EmbeddingHead (BN-neck + classifier, GeM's p)."""
    heads = {"heads.pool_layer.p": torch.tensor([3.0]), "heads.bottleneck.0.weight": torch.rand(2048),
             "heads.bottleneck.0.bias": torch.zeros(2048), "heads.bottleneck.0.running_mean": torch.randn(2048),
             "heads.bottleneck.0.running_var": torch.rand(2048),
             "heads.bottleneck.0.num_batches_tracked": torch.tensor(5), classifier: torch.randn(NUM_IDS, 2048)}
    return {"pixel_mean": torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1),
            "pixel_std": torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1),
            **{"backbone." + k: v for k, v in trunk.items()}, **heads}


def test_fast_reid_resnet50_checkpoint_loads_every_backbone_tensor(tmp_path, resnet50_trunk):
    """fast-reid's Checkpointer: ``{'model', 'optimizer', 'scheduler', 'iteration'}``, keys ``backbone.conv1.weight``,
    ``backbone.layer1.0.conv1.weight`` … (torchvision's names), ``heads.*``, ``pixel_mean`` / ``pixel_std``."""
    optimizer, scheduler = _optimizer_and_scheduler()
    model = _fast_reid_model(resnet50_trunk)
    path = tmp_path / "model_final.pth"
    torch.save({"model": model, "optimizer": optimizer, "scheduler": scheduler, "iteration": 17999}, path)
    backbone = _load_quietly("resnet50", path)
    _assert_trunk_loaded(backbone, resnet50_trunk)
    rep = backbone.load_report
    head_keys = sorted(k for k in model if not k.startswith("backbone."))
    assert len(head_keys) == 9 and sorted(rep.ignored) == head_keys
    assert len(rep.loaded) == len(resnet50_trunk) and rep.clean and rep.layout == "backbone under 'backbone.'"
    assert rep.summary().splitlines()[0] == (f"{path} [backbone under 'backbone.']: loaded {len(resnet50_trunk)} "
                                             "tensors; missing 0, unexpected 0, shape mismatch 0, ignored 9")
    # an older release (heads.classifier) saved from DistributedDataParallel, under a wrapper prefix
    old = tmp_path / "old_release.pth"
    torch.save({"model": {"module.model." + k: v for k, v in _fast_reid_model(resnet50_trunk, "heads.classifier.weight")
                          .items()}}, old)
    backbone = _load_quietly("resnet50", old)
    _assert_trunk_loaded(backbone, resnet50_trunk)
    assert backbone.load_report.layout == "'model.' stripped, backbone under 'backbone.'"


def test_fast_reid_ibn_variant_is_refused_naming_file_and_counts(tmp_path, resnet50_trunk):
    """ResNet50-IBN-a: layer1–3's ``bn1`` is half InstanceNorm (``bn1.IN.*``), half BatchNorm (``bn1.BN.*``): 52
    tensors the torchvision ResNet does not have. The backbone would be 84 % filled: refused, not warned about."""
    ibn = {}
    for k, v in resnet50_trunk.items():
        layer = k.split(".")[0]
        if layer in ("layer1", "layer2", "layer3") and k.split(".")[2] == "bn1":
            half = v.shape[0] // 2 if v.dim() else None
            stat = k.rsplit(".", 1)[1]
            base = k.rsplit(".", 1)[0]
            if stat in ("weight", "bias"):
                ibn[f"{base}.IN.{stat}"] = v[:half]
            ibn[f"{base}.BN.{stat}"] = v if half is None else v[half:]
        else:
            ibn[k] = v
    path = tmp_path / "market_bot_R50-ibn.pth"
    torch.save({"model": _fast_reid_model(ibn)}, path)
    with pytest.warns(UserWarning, match="unexpected"), pytest.raises(ValueError) as e:
        build_backbone("resnet50", weights=f"file:{path}")
    msg = str(e.value)
    missing = sum(1 for k in resnet50_trunk if ".bn1." in k and k.split(".")[0] in ("layer1", "layer2", "layer3")
                  and not k.endswith("num_batches_tracked"))
    assert missing == 13 * 4  # 3 + 4 + 6 blocks, weight / bias / running mean / running var
    assert str(path) in msg and "[backbone under 'backbone.']" in msg and "of backbone 'resnet50'" in msg
    # ignored: the 9 head / buffer tensors and the 13 num_batches_tracked counters of the missing bn1s
    assert f"missing {missing}, unexpected " in msg and "ignored 22" in msg and "its keys are ResNet's" in msg


# --------------------------------------------------------------------------- reid-strong-baseline
def test_reid_strong_baseline_checkpoint_loads(tmp_path):
    torch.manual_seed(4)
    trunk = {k: v for k, v in torchvision.models.resnet18().state_dict().items() if not k.startswith("fc.")}
    sd = {**{"base." + k: v for k, v in trunk.items()}, "bottleneck.weight": torch.rand(512),
          "bottleneck.bias": torch.zeros(512), "bottleneck.running_mean": torch.zeros(512),
          "bottleneck.running_var": torch.ones(512), "bottleneck.num_batches_tracked": torch.tensor(0),
          "classifier.weight": torch.randn(NUM_IDS, 512)}
    path = tmp_path / "resnet18_model_120.pth"
    torch.save(sd, path)
    backbone = _load_quietly("resnet18", path)
    _assert_trunk_loaded(backbone, trunk)
    assert backbone.load_report.layout == "backbone under 'base.'" and len(backbone.load_report.ignored) == 6


def test_checkpoint_layout_rules():
    assert checkpoint_layout(["conv1.weight", "classifier.weight"]) == CheckpointLayout()
    lay = checkpoint_layout(["model.module.backbone.conv1.weight", "model.module.heads.weight"])
    assert lay == CheckpointLayout("model.module.", "backbone.")
    assert lay.backbone_key("model.module.backbone.layer1.0.conv1.weight") == "layer1.0.conv1.weight"
    assert lay.backbone_key("model.module.heads.weight") is None
    # outside the container only the re-ID heads are dropped; anything else is offered as is (then: unexpected)
    assert lay.backbone_key("model.module.extra.weight") == "extra.weight"
    plain = CheckpointLayout()
    assert [plain.backbone_key(k) for k in ("fc.weight", "bottleneck.bias", "pixel_mean", "fcx.weight")] == [
        None, None, None, "fcx.weight"]
    assert plain.key_map(lambda k: "x." + k)("layer1.0.conv1.weight") == "x.layer1.0.conv1.weight"
    # a head's name that the backbone does have is kept, never dropped
    assert plain.key_map(keep={"fc.weight"})("fc.weight") == "fc.weight" and plain.key_map()("fc.weight") is None
    assert lay.key_map(keep={"heads.weight"})("model.module.heads.weight") == "heads.weight"
    assert checkpoint_layout(["model.a", "b"]).wrapper == ""  # a prefix not on every key is no wrapper


# --------------------------------------------------------------------------- no code runs
class _Payload:
    """Unpickling it would create ``marker`` (what a malicious checkpoint would do with a shell command)."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_files_that_pickle_objects_are_refused_unread(tmp_path):
    marker = tmp_path / "code_ran"
    evil = tmp_path / "evil.pth.tar"
    torch.save({"state_dict": {"conv1.weight": torch.zeros(64, 3, 7, 7)}, "epoch": 1, "extra": _Payload(marker)}, evil)
    with pytest.raises(ValueError) as e:
        build_backbone("resnet50", weights=f"file:{evil}")
    assert not marker.exists()
    msg = str(e.value)
    assert str(evil) in msg and "io.open" in msg and "weights_only=True" in msg
    # the same as a legacy (non-zip) file, which torch cannot list the globals of: its error still names one
    legacy = tmp_path / "legacy.pth.tar"
    torch.save({"extra": _Payload(marker)}, legacy, _use_new_zipfile_serialization=False)
    with pytest.raises(ValueError, match=r"refused: .*\(io\.open\)"):
        build_backbone("resnet50", weights=f"file:{legacy}")
    assert not marker.exists()
    # a whole pickled nn.Module (torch.save(model)) names its classes
    whole = tmp_path / "whole_model.pth"
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(), whole)
    with pytest.raises(ValueError, match=r"whole_model\.pth: refused: .*\(torch\.nn\.modules\."):
        build_backbone("resnet18", weights=f"file:{whole}")
    garbage = tmp_path / "notes.pth"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match=r"notes\.pth: not a PyTorch checkpoint"):
        build_backbone("resnet18", weights=f"file:{garbage}")


def test_numpy_values_are_read_as_data(tmp_path):
    """numpy scalars (torchreid's ``rank1``), dtypes and arrays are data, not code: read; arrays become tensors."""
    path = tmp_path / "numpy.pth"
    weight = np.arange(6, dtype=np.float32).reshape(2, 3)
    torch.save({"model": {"fc.weight": weight, "fc.bias": torch.ones(2)}, "metric": np.float64(61.2),
                "kind": np.dtype("int16"), "ranks": np.array([0.5, 0.7])}, path, _use_new_zipfile_serialization=False)
    sd = read_checkpoint(path)
    assert set(sd) == {"fc.weight", "fc.bias"} and isinstance(sd["fc.weight"], torch.Tensor)
    assert torch.equal(sd["fc.weight"], torch.from_numpy(weight))


# --------------------------------------------------------------------------- timm:<model>
def test_hrnet_reid_on_a_timm_backbone_forward_backward():
    torch.manual_seed(0)
    model = HRNetReID("timm:mobilenetv3_small_100", num_classes=5).train()
    feats = timm.create_model("mobilenetv3_small_100", features_only=True).feature_info
    assert model.backbone.channels == tuple(feats.channels()[-4:]) == (16, 24, 48, 576)
    assert model.backbone.strides == (4, 8, 16, 32)
    assert model.seq_dims == (16 * 16, 24 * 4, 48 * 4, 576, 256 + 96 + 192 + 576)
    x = torch.randn(4, 3, 64, 32)
    out = model(x)
    assert [tuple(s.shape) for s in out.seq] == [(4, d) for d in model.seq_dims] and out.logits.shape == (4, 5)
    F = torch.nn.functional
    (F.cross_entropy(out.logits, torch.tensor([0, 1, 2, 3])) + out.feat.pow(2).mean()).backward()
    first = model.backbone.body.conv_stem.weight
    assert first.grad is not None and first.grad.abs().sum() > 0  # the loss reaches the stem
    model.eval()
    with torch.no_grad():
        assert model.extract(x[:2]).shape == (2, model.test_dim)


def test_timm_backbone_file_weights_with_flattened_names(tmp_path):
    """convnext's ``features_only`` module renames ``stem.0`` / ``stages.0`` to ``stem_0`` / ``stages_0``: a file
    named as timm's classification model still fills every tensor; the head (``head.*``) is ignored."""
    torch.manual_seed(3)
    full = timm.create_model("test_convnext")
    sd = {k: torch.randn_like(v) for k, v in full.state_dict().items()}
    path = tmp_path / "test_convnext.pth"
    torch.save(sd, path)
    backbone = _load_quietly("timm:test_convnext", path)
    rep = backbone.load_report
    own = backbone.body.state_dict()
    assert "stem_0.weight" in own and len(rep.loaded) == len(own) and rep.clean
    assert sorted(rep.ignored) == sorted(k for k in sd if k.startswith("head."))
    assert torch.equal(own["stem_0.weight"], sd["stem.0.weight"])
    assert torch.equal(own["stages_3.blocks.1.mlp.fc2.weight"], sd["stages.3.blocks.1.mlp.fc2.weight"])
    # a ResNet file for it is refused like any file for another network
    resnet = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), resnet)
    with pytest.raises(RuntimeError, match="no tensor matched"):
        build_backbone("timm:test_convnext", weights=f"file:{resnet}")


def test_timm_backbone_names_and_errors():
    from lib.methods.pshrnet.config import ModelConfig
    from lib.models import BACKBONES
    from lib.models.backbones import TimmBackbone, is_backbone_name
    from lib.workflow import check_weights_map

    assert BACKBONES.get("timm:resnet18") is TimmBackbone and is_backbone_name("timm:resnet18.a1_in1k")
    assert not is_backbone_name("timm:") and not is_backbone_name("timm:no_such_net")
    with pytest.raises(KeyError, match=r"unknown backbone 'timm:no_such_net': 'no_such_net' is not a timm model"):
        build_backbone("timm:no_such_net")
    with pytest.raises(KeyError, match=r"registered: .*resnet50.*; and timm:<a timm model name"):
        build_backbone("vit_b16")
    assert ModelConfig(backbone="timm:resnet18").backbone == "timm:resnet18"  # a config row may name one
    assert check_weights_map({"timm:resnet18": "file:/w/r18.pth"}, "weights.yaml") == {"timm:resnet18": "file:/w/r18.pth"}
    assert not hasattr(TimmBackbone, "split")  # FTWA's two streams refuse it (no stem / body cut)
    with pytest.raises(ValueError, match=r"timm gives 3 feature levels .*pass out_indices"):
        build_backbone("timm:test_vit")
    backbone, channels = build_backbone("timm:resnet18", out_indices=(2, 3, 4))
    assert channels == (128, 256, 512) and backbone.strides == (8, 16, 32)


def test_safetensors_files_are_read_by_suffix_or_header(tmp_path):
    """timm's hub weights are ``model.safetensors``: read as tensors (no pickle), also when renamed; a broken one is
    an error naming the file."""
    from safetensors.torch import save_file

    torch.manual_seed(4)
    full = timm.create_model("test_convnext")
    sd = {k: torch.randn_like(v) for k, v in full.state_dict().items()}
    path = tmp_path / "model.safetensors"
    save_file(sd, str(path))
    renamed = tmp_path / "model.bin"
    renamed.write_bytes(path.read_bytes())
    for p in (path, renamed):
        got = read_checkpoint(p)
        assert set(got) == set(sd) and all(torch.equal(got[k], sd[k]) for k in sd)
    backbone = _load_quietly("timm:test_convnext", path)
    assert backbone.load_report.clean and torch.equal(backbone.body.state_dict()["stem_0.weight"], sd["stem.0.weight"])
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match=r"broken\.safetensors: not a readable safetensors file"):
        read_checkpoint(broken)


def test_numpy_arrays_without_a_tensor_type_are_named(tmp_path):
    """fast-reid's dicts may hold numpy arrays: numbers become tensors; strings or objects are an error naming the
    file and the key, not a TypeError from torch."""
    path = tmp_path / "np.pth"
    torch.save({"model": {"a.weight": np.ones(3, np.float32), "a.names": np.array(["x", "y"])}}, path)
    with pytest.raises(ValueError, match=r"np\.pth: key 'a\.names' is a numpy array of dtype <U1, which is no tensor"):
        read_checkpoint(path)
    # big-endian and strided arrays (numpy's, not torch's layouts) are read as their values
    torch.save({"model": {"a.weight": np.arange(4, dtype=">f4"), "b.weight": np.arange(8, dtype=np.float32)[::-2]}},
               path)
    got = read_checkpoint(path)
    assert torch.equal(got["a.weight"], torch.arange(4.0)) and torch.equal(got["b.weight"], torch.tensor([7., 5, 3, 1]))
