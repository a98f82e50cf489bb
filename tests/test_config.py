"""lib.core: the name registry, YAML ``_base_`` inheritance, merging, dotted overrides and typed dataclasses."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

import pytest

from lib.core import (
    ConfigError,
    Registry,
    UnknownNameError,
    apply_overrides,
    flatten,
    from_dict,
    load_config_file,
    merge,
    to_dict,
)

# ----------------------------------------------------------------------------------------------------------------
# Registry
# ----------------------------------------------------------------------------------------------------------------


def test_registry_decorator_forms_and_build():
    reg = Registry("SR module")

    @reg.register("vdsr_ca")
    class VDSR:
        def __init__(self, scale: int = 2) -> None:
            self.scale = scale

    @reg.register()
    def Bicubic(scale: int = 2) -> str:  # noqa: N802 - the lower-cased name is what is being tested
        return f"bicubic x{scale}"

    @reg.register
    def nearest() -> str:
        return "nearest"

    assert reg.register("plain", len) is len
    assert reg.get("vdsr_ca") is VDSR and reg.get("bicubic") is Bicubic and reg.get("nearest") is nearest
    assert reg.build("vdsr_ca", scale=4).scale == 4
    assert reg.build("bicubic", 3) == "bicubic x3"
    assert reg.names() == ["bicubic", "nearest", "plain", "vdsr_ca"]
    assert list(reg) == reg.names()
    assert len(reg) == 4
    assert "vdsr_ca" in reg and "VDSR" not in reg and 3 not in reg
    assert "SR module" in repr(reg) and "vdsr_ca" in repr(reg)


def test_registry_duplicate_name_raises():
    reg = Registry("backbone")
    reg.register("resnet50", object)
    with pytest.raises(ValueError, match=r"backbone 'resnet50' is already registered"):
        reg.register("resnet50", dict)

    with pytest.raises(ValueError, match="resnet50"):

        @reg.register()
        class ResNet50:
            pass

    assert reg.get("resnet50") is object  # the first registration stands


def test_registry_unknown_name_lists_sorted_names():
    reg = Registry("SR module")
    reg.register("vdsr_ca", object)
    reg.register("bicubic", object)
    with pytest.raises(KeyError) as info:
        reg.get("foo")
    assert isinstance(info.value, UnknownNameError)
    assert str(info.value) == "unknown SR module 'foo'; registered: bicubic, vdsr_ca"
    with pytest.raises(KeyError, match=r"unknown SR module 'foo'"):
        reg.build("foo")
    assert str(UnknownNameError("x")) == "x"
    with pytest.raises(KeyError, match=r"registered: \(none\)"):
        Registry("loss term").get("ce")


def test_registry_family_of_prefixed_names():
    reg = Registry("backbone")
    reg.register("resnet50", int)
    assert reg.register_family("timm:", dict, lambda rest: rest in ("resnet18", "convnext_tiny"), "a timm model") is dict
    assert reg.get("timm:resnet18") is dict and reg.build("timm:convnext_tiny") == {} and reg.get("resnet50") is int
    assert "timm:resnet18" in reg and "timm:vgg" not in reg and "timm:" not in reg
    assert reg.names() == ["resnet50"] and len(reg) == 1  # a family is no list of names
    with pytest.raises(KeyError) as info:
        reg.get("timm:vgg")
    assert str(info.value) == "unknown backbone 'timm:vgg': 'vgg' is not a timm model"
    with pytest.raises(KeyError) as info:
        reg.get("vgg")
    assert str(info.value) == "unknown backbone 'vgg'; registered: resnet50; and timm:<a timm model>"
    with pytest.raises(ValueError, match="falls under the family 'timm:'"):
        reg.register("timm:mine", object)
    with pytest.raises(ValueError, match="clashes"):
        reg.register_family("timm:x", object, bool, "anything")
    with pytest.raises(KeyError, match="member of a family"):
        reg.unregister("timm:resnet18")


# ----------------------------------------------------------------------------------------------------------------
# YAML files, _base_ inheritance, merge
# ----------------------------------------------------------------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_base_chain_three_levels(tmp_path):
    write(tmp_path / "a.yaml", "seed: 1\nmodel: {name: r50, depth: 50, stride: 2}\nlist: [1, 2, 3]\n")
    write(tmp_path / "b.yaml", "_base_: a.yaml\nmodel: {depth: 101}\nlist: [9]\nextra: b\n")
    c = write(tmp_path / "c.yaml", "_base_: b.yaml\nmodel: {stride: 1}\nseed: 3\n")
    cfg = load_config_file(c)
    assert cfg == {"seed": 3, "model": {"name": "r50", "depth": 101, "stride": 1}, "list": [9], "extra": "b"}
    assert "_base_" not in cfg
    assert load_config_file(str(c)) == cfg  # str paths work too


def test_base_list_in_order_with_relative_paths_in_subfolder(tmp_path):
    write(tmp_path / "configs" / "base" / "data.yaml", "data: {name: market, size: [256, 128]}\nlr: 0.1\n")
    write(tmp_path / "configs" / "base" / "optim.yaml", "lr: 0.01\noptim: {name: sgd}\n")
    write(tmp_path / "configs" / "common.yaml", "optim: {name: adam, betas: [0.9, 0.999]}\n")
    exp = write(
        tmp_path / "configs" / "exp" / "run.yaml",
        "_base_: [../base/data.yaml, ../base/optim.yaml, ../common.yaml]\ndata: {name: duke}\n",
    )
    cfg = load_config_file(exp)
    assert cfg == {
        "data": {"name": "duke", "size": [256, 128]},
        "lr": 0.01,  # the later base wins
        "optim": {"name": "adam", "betas": [0.9, 0.999]},
    }


def test_base_cycle_is_detected(tmp_path):
    write(tmp_path / "a.yaml", "_base_: b.yaml\nx: 1\n")
    write(tmp_path / "b.yaml", "_base_: c.yaml\n")
    write(tmp_path / "c.yaml", "_base_: a.yaml\n")
    with pytest.raises(ConfigError, match="cycle") as info:
        load_config_file(tmp_path / "a.yaml")
    msg = str(info.value)
    assert msg.index("a.yaml") < msg.index("b.yaml -> ") < msg.index("c.yaml -> ")
    assert msg.rstrip().endswith("a.yaml")

    write(tmp_path / "self.yaml", "_base_: self.yaml\n")
    with pytest.raises(ConfigError, match=r"self\.yaml -> .*self\.yaml"):
        load_config_file(tmp_path / "self.yaml")


def test_diamond_bases_are_not_a_cycle(tmp_path):
    write(tmp_path / "root.yaml", "x: 1\ny: 1\n")
    write(tmp_path / "left.yaml", "_base_: root.yaml\nx: 2\n")
    write(tmp_path / "right.yaml", "_base_: root.yaml\ny: 3\n")
    top = write(tmp_path / "top.yaml", "_base_: [left.yaml, right.yaml]\n")
    # each base is resolved on its own, then later bases override earlier ones as a whole:
    # right.yaml carries root's x: 1, which wins over left.yaml's x: 2
    assert load_config_file(top) == {"x": 1, "y": 3}


def test_missing_base_names_both_files(tmp_path):
    child = write(tmp_path / "sub" / "child.yaml", "_base_: ../nope.yaml\n")
    with pytest.raises(ConfigError) as info:
        load_config_file(child)
    msg = str(info.value)
    assert "nope.yaml" in msg and "child.yaml" in msg and "not found" in msg

    with pytest.raises(ConfigError, match=r"not found: .*absent\.yaml"):
        load_config_file(tmp_path / "absent.yaml")


def test_invalid_yaml_and_non_mapping_top_level(tmp_path):
    bad = write(tmp_path / "bad.yaml", "a: [1, 2\nb: 3\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: invalid YAML"):
        load_config_file(bad)
    lst = write(tmp_path / "list.yaml", "- 1\n- 2\n")
    with pytest.raises(ConfigError, match=r"list\.yaml: .*must be a mapping, found list"):
        load_config_file(lst)
    base_int = write(tmp_path / "base_int.yaml", "_base_: 3\n")
    with pytest.raises(ConfigError, match=r"base_int\.yaml: _base_ must be"):
        load_config_file(base_int)
    assert load_config_file(write(tmp_path / "empty.yaml", "")) == {}


def test_delete_replaces_instead_of_merging(tmp_path):
    write(tmp_path / "base.yaml", "loss: {ce: 1.0, triplet: {margin: 0.3, weight: 1.0}}\nkeep: 1\n")
    child = write(tmp_path / "child.yaml", "_base_: base.yaml\nloss: {_delete_: true, focal: {gamma: 2}}\n")
    assert load_config_file(child) == {"loss": {"focal": {"gamma": 2}}, "keep": 1}

    base = {"a": {"x": 1, "y": {"z": 1}}, "b": [1, 2]}
    assert merge(base, {"a": {"y": {"_delete_": True, "w": 2}}}) == {"a": {"x": 1, "y": {"w": 2}}, "b": [1, 2]}
    assert merge(base, {"a": {"_delete_": False, "x": 5}}) == {"a": {"x": 5, "y": {"z": 1}}, "b": [1, 2]}
    with pytest.raises(ConfigError, match="_delete_"):
        merge(base, {"a": {"_delete_": "yes"}})


def test_merge_is_deep_and_leaves_inputs_untouched():
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    override = {"a": {"c": [3], "e": {"f": 1}}, "d": {"g": 2}}
    out = merge(base, override)
    assert out == {"a": {"b": 1, "c": [3], "e": {"f": 1}}, "d": {"g": 2}}
    out["a"]["c"].append(4)
    out["a"]["e"]["f"] = 99
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    assert override == {"a": {"c": [3], "e": {"f": 1}}, "d": {"g": 2}}


def test_apply_overrides_dotted():
    d = {"phase2": {"lr": 0.1, "epochs": 10}, "loss": {"ps_components": ["seq1", "seq2"]}, "seed": 0}
    out = apply_overrides(d, {"phase2.lr": 1e-3, "loss.ps_components": ["seq5"], "new.deep.key": True, "seed": 7})
    assert out == {
        "phase2": {"lr": 1e-3, "epochs": 10},
        "loss": {"ps_components": ["seq5"]},
        "new": {"deep": {"key": True}},
        "seed": 7,
    }
    assert d["phase2"]["lr"] == 0.1 and d["loss"]["ps_components"] == ["seq1", "seq2"] and "new" not in d
    with pytest.raises(ConfigError, match=r"'phase2\.lr\.x'.*'phase2\.lr' is float 0\.1"):
        apply_overrides(d, {"phase2.lr.x": 1})
    with pytest.raises(ConfigError, match="dotted"):
        apply_overrides(d, {"phase2..lr": 1})


def test_flatten():
    assert flatten({"a": {"b": 1, "c": {"d": [1]}}, "e": [1], "f": {}}) == {"a.b": 1, "a.c.d": [1], "e": [1], "f": {}}
    assert flatten({"b": 1}, prefix="a") == {"a.b": 1}


# ----------------------------------------------------------------------------------------------------------------
# Typed dataclasses
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Losses:
    sr: float = 1.0
    weights: dict[str, float] = field(default_factory=lambda: {"ce": 1.0})


@dataclass(frozen=True)
class Phase:
    lr: float = 0.1
    epochs: int = 10
    optimizer: Literal["sgd", "adam"] = "sgd"
    milestones: tuple[int, ...] = (40, 70)
    losses: Losses = field(default_factory=Losses)

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, found {self.lr}")


@dataclass(frozen=True)
class Experiment:
    seed: int = 0
    name: str = "run"
    amp: bool = False
    size: tuple[int, int] = (256, 128)
    tags: list[str] = field(default_factory=list)
    warmup: Optional[int] = None  # noqa: UP007 - Optional[...] is deliberately tested next to X | None
    scale: float | str = 1.0
    note: Any = None
    phase1: Phase = field(default_factory=Phase)
    phase2: Phase = field(default_factory=lambda: Phase(lr=0.01, epochs=5, losses=Losses(sr=0.5)))
    extra: Phase | None = None


@dataclass
class Required:
    n: int
    label: str = "x"


def test_from_dict_defaults_and_nested_merge_over_default_instance():
    assert from_dict(Experiment, {}) == Experiment()
    cfg = from_dict(Experiment, {"phase2": {"epochs": 7}, "phase1": {"losses": {"sr": 2}}})
    assert cfg.phase2 == Phase(lr=0.01, epochs=7, losses=Losses(sr=0.5))  # other keys from the default instance
    assert cfg.phase1.losses == Losses(sr=2.0) and isinstance(cfg.phase1.losses.sr, float)
    nested = from_dict(Experiment, {"phase2": {"losses": {"weights": {"tri": 1}}}})
    assert nested.phase2.losses == Losses(sr=0.5, weights={"tri": 1.0})  # dict values replace, not merge


def test_from_dict_coercions():
    cfg = from_dict(Experiment, {"phase1": {"lr": 1, "milestones": [10, 20, 30]}, "size": [384, 192],
                                 "tags": ("a", "b"), "warmup": 5, "scale": "auto", "note": {"free": [1]}})
    assert cfg.phase1.lr == 1.0 and type(cfg.phase1.lr) is float
    assert cfg.phase1.milestones == (10, 20, 30) and isinstance(cfg.phase1.milestones, tuple)
    assert cfg.size == (384, 192) and cfg.tags == ["a", "b"] and isinstance(cfg.tags, list)
    assert cfg.warmup == 5 and cfg.scale == "auto" and cfg.note == {"free": [1]}
    assert from_dict(Experiment, {"scale": 2}).scale == 2.0
    assert from_dict(Experiment, {"extra": {"epochs": 1}}).extra == Phase(epochs=1)
    assert from_dict(Experiment, {"extra": None, "warmup": None}).extra is None


@pytest.mark.parametrize(
    ("data", "pieces"),
    [
        ({"seed": "abc"}, ["config: seed must be int, found str 'abc'"]),
        ({"seed": True}, ["seed must be int", "found bool True"]),
        ({"seed": 1.5}, ["seed must be int", "found float 1.5"]),
        ({"phase2": {"lr": "1e-3"}},
         ["phase2.lr must be float, found str '1e-3' (YAML reads 1e-3 as a string: write 1.0e-3)"]),
        ({"phase1": {"lr": False}}, ["phase1.lr must be float", "found bool False"]),
        ({"amp": "yes"}, ["amp must be bool", "found str 'yes'"]),
        ({"amp": 1}, ["amp must be bool", "found int 1"]),
        ({"name": 3}, ["name must be str", "found int 3"]),
        ({"phase1": {"optimizer": "rmsprop"}}, ["phase1.optimizer must be one of 'sgd', 'adam'", "'rmsprop'"]),
        ({"phase1": {"milestones": 40}}, ["phase1.milestones must be a list of int", "found int 40"]),
        ({"phase1": {"milestones": [40, "x"]}}, ["phase1.milestones[1] must be int", "found str 'x'"]),
        ({"size": [256]}, ["size must be a list of 2 items (int, int)", "found list [256]"]),
        ({"tags": "a"}, ["tags must be a list of str", "found str 'a'"]),
        ({"phase1": {"losses": {"weights": {"ce": "high"}}}},
         ["phase1.losses.weights.ce must be float", "found str 'high'"]),
        ({"phase1": {"losses": {"weights": {1: 1.0}}}},
         ["phase1.losses.weights keys must be str", "found int 1"]),
        ({"phase1": {"losses": {"weights": [1.0]}}},
         ["phase1.losses.weights must be a mapping of str to float", "found list [1.0]"]),
        ({"phase2": 3}, ["phase2 must be a mapping (Phase section)", "found int 3"]),
        ({"phase2": {"losses": "none"}}, ["phase2.losses must be a mapping (Losses section)", "found str 'none'"]),
        ({"warmup": "5"}, ["warmup must be int or None", "found str '5'", "drop the quotes"]),
        ({"scale": [1]}, ["scale must be float or str", "found list [1]"]),
        ({"extra": {"epochs": "x"}}, ["extra.epochs must be int", "found str 'x'"]),
        ({"phase1": {"epochs": None}}, ["phase1.epochs must be int, found None", "null"]),
    ],
)
def test_from_dict_type_errors(data, pieces):
    with pytest.raises(ConfigError) as info:
        from_dict(Experiment, data)
    msg = str(info.value)
    assert msg.startswith("config: ")
    for piece in pieces:
        assert piece in msg, (piece, msg)


def test_from_dict_where_prefix_and_key_attribute():
    with pytest.raises(ConfigError) as info:
        from_dict(Experiment, {"phase2": {"lr": "1e-3"}}, where="configs/x.yaml")
    assert str(info.value).startswith("configs/x.yaml: phase2.lr must be float")
    assert info.value.key == "phase2.lr"
    assert isinstance(info.value, ValueError)


def test_from_dict_unknown_keys_list_valid_keys():
    with pytest.raises(ConfigError) as info:
        from_dict(Experiment, {"phase2": {"lrr": 0.1}})
    assert str(info.value) == (
        "config: unknown key 'phase2.lrr'; valid keys of phase2: lr, epochs, optimizer, milestones, losses"
    )
    with pytest.raises(ConfigError, match=r"unknown key 'sede'; valid keys of Experiment: seed, name, amp"):
        from_dict(Experiment, {"sede": 1})
    with pytest.raises(ConfigError, match=r"unknown key 'phase1\.losses\.srr'; valid keys of phase1\.losses: sr, "):
        from_dict(Experiment, {"phase1": {"losses": {"srr": 1}}})


def test_from_dict_missing_required_and_top_level_not_mapping():
    assert from_dict(Required, {"n": 2}) == Required(n=2)
    with pytest.raises(ConfigError, match=r"config: missing required key 'n' \(int\)"):
        from_dict(Required, {"label": "y"})
    with pytest.raises(ConfigError, match=r"config: the top level must be .*found list"):
        from_dict(Required, [1])
    with pytest.raises(TypeError):
        from_dict(dict, {})


def test_post_init_value_error_becomes_config_error():
    with pytest.raises(ConfigError) as info:
        from_dict(Experiment, {"phase2": {"lr": -1}}, where="exp.yaml")
    assert str(info.value) == "exp.yaml: phase2: lr must be positive, found -1.0"
    assert isinstance(info.value.__cause__, ValueError)
    with pytest.raises(ConfigError, match=r"^config: lr must be positive"):
        from_dict(Phase, {"lr": 0})


def test_to_dict_round_trip():
    x = Experiment(seed=3, size=(128, 64), tags=["t"], warmup=2, scale="auto", note={"k": (1, 2)},
                   phase1=Phase(lr=0.5, optimizer="adam", milestones=(1, 2), losses=Losses(weights={"a": 2.0})),
                   extra=Phase(epochs=3))
    d = to_dict(x)
    assert d["size"] == [128, 64] and d["phase1"]["milestones"] == [1, 2] and d["note"] == {"k": [1, 2]}
    assert d["phase1"]["losses"] == {"sr": 1.0, "weights": {"a": 2.0}}
    assert d["extra"]["epochs"] == 3
    d["phase1"]["losses"]["weights"]["a"] = 0.0  # a copy, not the instance's dict
    assert x.phase1.losses.weights == {"a": 2.0}
    d = to_dict(x)
    back = from_dict(Experiment, d)
    assert dataclasses.replace(back, note=x.note) == x  # `note: Any` is not converted back to a tuple
    assert from_dict(Experiment, to_dict(Experiment())) == Experiment()
    assert from_dict(Experiment, flatten_then_unflatten(to_dict(x))) == back
    with pytest.raises(TypeError):
        to_dict(Experiment)


def flatten_then_unflatten(d: dict) -> dict:
    """flatten() and apply_overrides() are inverses on plain configs."""
    return apply_overrides({}, flatten(d))


def test_yaml_to_dataclass_end_to_end(tmp_path):
    write(tmp_path / "base.yaml", "seed: 1\nphase2: {lr: 1.0e-3, milestones: [5, 8]}\n")
    exp = write(tmp_path / "exp.yaml", "_base_: base.yaml\nphase2: {epochs: 20}\ntags: [a]\n")
    raw = apply_overrides(load_config_file(exp), {"phase2.optimizer": "adam"})
    cfg = from_dict(Experiment, raw, where=str(exp))
    assert cfg.seed == 1 and cfg.tags == ["a"]
    assert cfg.phase2 == Phase(lr=1e-3, epochs=20, optimizer="adam", milestones=(5, 8), losses=Losses(sr=0.5))
