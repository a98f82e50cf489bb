"""The registered SR modules: interface (shape, input interpolation), learning, sizes, VDSR-CA's checkpoint layout."""

from __future__ import annotations

import types

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lib.core.registry import UnknownNameError
from lib.models.sr import RCAN, SR_MODULES, SRCNN, VDSR, VDSRCA, Bicubic, ChannelAttention, build_sr

NAMES = ["bicubic", "rcan", "srcnn", "vdsr", "vdsr_ca"]
LEARNED = [n for n in NAMES if n != "bicubic"]
SMALL = dict(depth=4, width=16, reduction=4, groups=1, blocks=2)


class RecordingConfig(types.SimpleNamespace):
    """A ``SimpleNamespace`` that records which attributes were read."""

    def __getattribute__(self, name: str):
        if not name.startswith("_"):
            object.__getattribute__(self, "_reads").add(name)
        return object.__getattribute__(self, name)


def _cfg(name: str, **overrides) -> RecordingConfig:
    cfg = RecordingConfig(name=name, **{**SMALL, **overrides})
    object.__setattr__(cfg, "_reads", set())
    return cfg


def _build(name: str) -> nn.Module:
    torch.manual_seed(0)
    return build_sr(_cfg(name))


def _params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def _conv3(c_in: int, c_out: int, bias: bool = True) -> int:
    return c_in * c_out * 9 + (c_out if bias else 0)


def _ca(c: int, r: int) -> int:
    hidden = max(1, c // r)
    return c * hidden + hidden + hidden * c + c


def _smooth_batch(b: int = 2, size: tuple[int, int] = (64, 32)) -> tuple[torch.Tensor, torch.Tensor]:
    """A smooth random HR image (ImageNet-normalised range) and its 2× down-then-up-sampled version."""
    g = torch.Generator().manual_seed(1)
    coarse = torch.randn(b, 3, size[0] // 8, size[1] // 8, generator=g)
    hr = F.interpolate(coarse, size=size, mode="bicubic", align_corners=False)
    lr = F.interpolate(hr, scale_factor=0.5, mode="bilinear", align_corners=False, antialias=True)
    return hr, F.interpolate(lr, size=size, mode="bilinear", align_corners=False)


# --------------------------------------------------------------------------- registry
def test_registry_names_and_unknown_name_lists_them():
    assert SR_MODULES.names() == NAMES
    listed = r"unknown SR module 'edsr'; registered: bicubic, rcan, srcnn, vdsr, vdsr_ca$"
    with pytest.raises(UnknownNameError, match=listed):
        build_sr(_cfg("edsr"))


@pytest.mark.parametrize(
    "name, cls, reads",
    [
        ("bicubic", Bicubic, {"name", "interpolation"}),
        ("srcnn", SRCNN, {"name", "interpolation"}),
        ("vdsr", VDSR, {"name", "depth", "width", "init", "interpolation"}),
        ("rcan", RCAN, {"name", "groups", "blocks", "width", "reduction", "interpolation"}),
        ("vdsr_ca", VDSRCA, {"name", "depth", "width", "reduction", "init", "interpolation"}),
    ],
)
def test_builder_type_and_reads_only_its_fields(name, cls, reads):
    cfg = _cfg(name)
    m = build_sr(cfg)
    assert type(m) is cls
    assert object.__getattribute__(cfg, "_reads") == reads


def test_builders_pass_the_config_values():
    vdsr = build_sr(_cfg("vdsr", depth=5, width=8))
    assert (vdsr.depth, vdsr.width, len(vdsr.body)) == (5, 8, 3)
    rcan = build_sr(_cfg("rcan", groups=2, blocks=3, width=8, reduction=2))
    assert (rcan.groups, rcan.blocks, rcan.width, rcan.reduction) == (2, 3, 8, 2)
    assert len(rcan.body) == 3 and len(rcan.body[0].body) == 4  # 2 groups + conv; 3 RCABs + conv
    assert rcan.body[0].body[0].body[3].down.out_channels == 4  # width / reduction
    ca = build_sr(_cfg("vdsr_ca", depth=6, width=8, reduction=2))
    assert (ca.depth, ca.width, ca.reduction, len(ca.body)) == (6, 8, 2, 4)
    assert build_sr(_cfg("srcnn", width=8)).kernel_sizes == (9, 5, 5)  # fixed: ignores the section


# --------------------------------------------------------------------------- interface
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape", [(2, 3, 64, 32), (1, 3, 37, 23)])
def test_output_shape_equals_input_shape(name, shape):
    m = _build(name).eval()
    x = torch.randn(*shape)
    with torch.no_grad():
        y = m(x)
    assert y.shape == x.shape and y.dtype == x.dtype and torch.isfinite(y).all()


@pytest.mark.parametrize("name", NAMES)
def test_input_interpolation(name):
    m = _build(name)
    assert m.input_interpolation == ("bicubic" if name == "bicubic" else "bilinear")
    assert type(m).input_interpolation == m.input_interpolation  # a class attribute


def test_bicubic_is_parameter_free_identity():
    m = _build("bicubic")
    assert _params(m) == 0 and list(m.state_dict()) == []
    x = torch.randn(2, 3, 64, 32)
    assert torch.equal(m(x), x)


@pytest.mark.parametrize("name", LEARNED)
def test_one_adam_step_lowers_l1(name):
    m = _build(name)
    hr, x = _smooth_batch()

    def loss() -> float:
        m.eval()
        with torch.no_grad():
            return F.l1_loss(m(x), hr).item()

    before = loss()
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    m.train()
    F.l1_loss(m(x), hr).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters())
    opt.step()
    after = loss()
    assert after < before, (name, before, after)


# --------------------------------------------------------------------------- residuals and adaptations
@pytest.mark.parametrize("name", ["vdsr", "rcan", "vdsr_ca"])
def test_global_residual_zero_tail_is_identity(name):
    m = _build(name).eval()
    nn.init.zeros_(m.tail.weight)
    if m.tail.bias is not None:
        nn.init.zeros_(m.tail.bias)
    x = torch.randn(2, 3, 16, 8)
    with torch.no_grad():
        assert torch.equal(m(x), x)
        assert torch.equal(m.residual(x), torch.zeros_like(x))


def test_srcnn_predicts_the_image_directly():
    m = _build("srcnn").eval()
    nn.init.zeros_(m.reconstruction.weight)
    nn.init.constant_(m.reconstruction.bias, 0.5)
    x = torch.randn(1, 3, 16, 8)
    with torch.no_grad():
        assert torch.equal(m(x), torch.full_like(x, 0.5))  # no global residual
    k = [c.kernel_size for c in m.modules() if isinstance(c, nn.Conv2d)]
    assert k == [(9, 9), (5, 5), (5, 5)]
    assert [c.padding for c in m.modules() if isinstance(c, nn.Conv2d)] == [(4, 4), (2, 2), (2, 2)]


def test_vdsr_structure_and_he_init():
    torch.manual_seed(0)
    m = VDSR(depth=20, width=64)
    convs = [c for c in m.modules() if isinstance(c, nn.Conv2d)]
    assert len(convs) == 20 and all(c.bias is None and c.kernel_size == (3, 3) for c in convs)
    assert len(m.body) == 18 and all(len(b) == 2 and isinstance(b[1], nn.ReLU) for b in m.body)
    std = m.body[0][0].weight.std().item()
    assert std == pytest.approx((2 / (9 * 64)) ** 0.5, rel=0.05)  # fan_out He-normal
    assert repr(m).startswith("VDSR(\n  depth=20, width=64\n")


def test_rcan_blocks_have_channel_attention_and_residuals():
    m = RCAN(groups=2, blocks=3, width=8, reduction=4)
    cas = [c for c in m.modules() if isinstance(c, ChannelAttention)]
    assert len(cas) == 6 and cas[0].down.out_channels == 2
    # a group whose convs are zero (CA output 0) is the identity: group and block residuals
    g = m.body[0]
    for c in g.modules():
        if isinstance(c, nn.Conv2d) and c.kernel_size == (3, 3):
            nn.init.zeros_(c.weight)
            nn.init.zeros_(c.bias)
    f = torch.randn(1, 8, 6, 4)
    with torch.no_grad():
        assert torch.equal(g(f), f)


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: VDSR(depth=1), "depth"),
        (lambda: VDSRCA(depth=4, reduction=0), "reduction"),
        (lambda: SRCNN(f2=4), "f2"),
        (lambda: RCAN(groups=0), "groups"),
        (lambda: RCAN(blocks=0), "blocks"),
    ],
)
def test_invalid_arguments(build, message):
    with pytest.raises(ValueError, match=message):
        build()


# --------------------------------------------------------------------------- sizes at the papers' settings
def test_vdsr_paper_size():
    assert _params(VDSR(20, 64)) == _conv3(3, 64, False) + 18 * _conv3(64, 64, False) + _conv3(64, 3, False)
    assert _params(VDSR(20, 64)) == 667_008  # 3 RGB channels
    assert _params(VDSR(20, 64, in_channels=1)) == 664_704  # the paper's luminance-only network


def test_srcnn_paper_size():
    expected = (3 * 64 * 81 + 64) + (64 * 32 * 25 + 32) + (32 * 3 * 25 + 3)
    assert _params(SRCNN()) == expected == 69_251


def _rcan_params(groups: int, blocks: int, w: int, r: int, c: int = 3) -> int:
    rcab = 2 * _conv3(w, w) + _ca(w, r)
    group = blocks * rcab + _conv3(w, w)
    return _conv3(c, w) + groups * group + _conv3(w, w) + _conv3(w, c)


def test_rcan_sizes():
    assert _params(RCAN()) == _rcan_params(3, 5, 64, 16)
    assert _params(RCAN(1, 2, 16, 4)) == _rcan_params(1, 2, 16, 4)
    original = _params(RCAN(groups=10, blocks=20, width=64, reduction=16))
    assert original == _rcan_params(10, 20, 64, 16)
    upsampler_x4 = 2 * _conv3(64, 4 * 64)  # the paper's two (conv 64→256, pixel shuffle ×2) stages
    assert 15.0e6 < original + upsampler_x4 < 16.0e6  # "about 15.6 M" with it


def test_vdsr_ca_paper_size():
    expected = _conv3(3, 64, False) + 18 * (_conv3(64, 64, False) + _ca(64, 4)) + _conv3(64, 3, False)
    assert _params(VDSRCA(20, 64, 4)) == expected == 705_312


# --------------------------------------------------------------------------- VDSR-CA checkpoint layout
def test_vdsr_ca_is_vdsr_with_ca_and_keeps_its_state_dict_layout():
    m = VDSRCA(20, 64, 4)
    assert isinstance(m, VDSR)
    assert all(isinstance(b[0], nn.Conv2d) and isinstance(b[1], ChannelAttention) and isinstance(b[2], nn.ReLU)
               for b in m.body)
    sd = m.state_dict()
    expected = {"head.0.weight": (64, 3, 3, 3), "tail.weight": (3, 64, 3, 3)}
    for i in range(18):
        expected[f"body.{i}.0.weight"] = (64, 64, 3, 3)
        expected[f"body.{i}.1.down.weight"] = (16, 64, 1, 1)
        expected[f"body.{i}.1.down.bias"] = (16,)
        expected[f"body.{i}.1.up.weight"] = (64, 16, 1, 1)
        expected[f"body.{i}.1.up.bias"] = (64,)
    assert {k: tuple(v.shape) for k, v in sd.items()} == expected
    for key in ("head.0.weight", "body.0.0.weight", "body.17.1.down.bias", "body.17.1.up.weight", "tail.weight"):
        assert key in sd
    assert repr(m).startswith("VDSRCA(\n  depth=20, width=64, reduction=4\n")
    # a checkpoint of this layout loads strictly
    VDSRCA(20, 64, 4).load_state_dict(sd, strict=True)


def test_vdsr_ca_init_he_on_3x3_only():
    torch.manual_seed(0)
    m = VDSRCA(20, 64, 4)
    assert m.body[0][0].weight.std().item() == pytest.approx((2 / (9 * 64)) ** 0.5, rel=0.05)
    # the 1x1 CA convs keep PyTorch's default: kaiming_uniform(a=sqrt(5)) -> U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    assert m.body[0][1].down.weight.abs().max().item() <= 1 / 64**0.5
    assert m.body[0][1].up.weight.abs().max().item() <= 1 / 16**0.5


def test_identity_init_starts_as_the_identity_and_opens_the_gates():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 32, 16)
    he, ident = VDSRCA(depth=20, width=16, reduction=4), VDSRCA(depth=20, width=16, reduction=4, init="identity")
    # at PyTorch's default gate init the 18 gated blocks pass ~0.5^18 of the body's signal
    assert (he(x) - x).abs().max() < 1e-3
    assert torch.equal(ident(x), x)  # the tail is zero
    h = ident.body(ident.head(x))
    assert h.abs().mean() > 100 * he.body(he.head(x)).abs().mean()  # the gates are open
    loss = F.l1_loss(ident(x), x.flip(-1))
    loss.backward()
    assert ident.tail.weight.grad.abs().sum() > 0  # the zero tail still learns
    with pytest.raises(ValueError, match="init: expected one of"):
        VDSR(depth=4, width=8, init="zeros")


def test_interpolation_option_overrides_the_modules_own():
    from lib.methods import load_config

    assert build_sr(load_config("configs/pshrnet/tiny.yaml").sr).input_interpolation == "bilinear"
    m = build_sr(load_config("configs/pshrnet/tiny.yaml", {"sr.interpolation": "bicubic"}).sr)
    assert m.input_interpolation == "bicubic" and type(m).input_interpolation == "bilinear"  # this instance only
    with pytest.raises(ValueError, match="interpolation: expected one of"):
        load_config("configs/pshrnet/tiny.yaml", {"sr.interpolation": "lanczos"})
