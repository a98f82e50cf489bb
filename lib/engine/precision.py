"""Numerics: bf16 autocast + channels_last where the hardware supports it, fp32 otherwise.

bf16 keeps fp32's exponent range, so no loss scaling is needed (unlike fp16); the losses themselves are
always computed in fp32 (:mod:`lib.losses` casts their inputs). bf16 pays off only where the hardware has
native bf16 (GPUs, CPUs with AVX-512 BF16 / AMX); on a CPU without it bf16 is emulated and slower than fp32
(``make bench-phase2`` measured 0.59× on the dev machine), so ``'auto'`` resolves to fp32 there.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

__all__ = ["Precision", "resolve_device", "resolve_precision", "cpu_has_fast_bf16"]


def resolve_device(device: str = "auto") -> torch.device:
    """``'auto'`` → CUDA when available, else CPU; otherwise ``torch.device(device)``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} requested but CUDA is not available; use device='cpu' or 'auto'")
    return dev


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU has native bf16 arithmetic (AVX-512 BF16 or AMX)."""
    cpu = getattr(torch.backends, "cpu", None)
    cap = cpu.get_cpu_capability() if cpu is not None and hasattr(cpu, "get_cpu_capability") else ""
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        flags = ""
    return ("avx512_bf16" in flags or "amx_bf16" in flags) and cap in ("AVX512", "AVX512_BF16", "AMX")


@dataclass(frozen=True)
class Precision:
    """The resolved numerics of a run: ``dtype`` for autocast (``None`` = fp32) and channels_last."""

    device: torch.device
    dtype: torch.dtype | None
    channels_last: bool

    @property
    def name(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16"}.get(self.dtype, str(self.dtype)) + (
            "+channels_last" if self.channels_last else ""
        )

    def autocast(self):
        """The autocast context (a no-op for fp32)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def prepare_input(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.dim() == 4 else x

    def prepare_module(self, m: torch.nn.Module) -> torch.nn.Module:
        m.to(self.device)
        return m.to(memory_format=torch.channels_last) if self.channels_last else m


def resolve_precision(device: torch.device, precision: str = "auto", channels_last: str | bool = "auto") -> Precision:
    """Turn the ``PRECISION`` / ``CHANNELS_LAST`` options into a :class:`Precision`.

    Args:
        precision: ``'auto'`` (bf16 on CUDA with bf16 support and on CPUs with native bf16, else fp32),
            ``'bf16'`` or ``'fp32'``.
        channels_last: ``'auto'`` (on: it was faster for fp32 and bf16 alike in ``make bench-phase2``), ``True`` or
            ``False``.
    """
    if precision not in ("auto", "bf16", "fp32"):
        raise ValueError(f"precision must be 'auto', 'bf16' or 'fp32', got {precision!r}")
    if precision == "auto":
        ok = torch.cuda.is_bf16_supported() if device.type == "cuda" else cpu_has_fast_bf16()
        precision = "bf16" if ok else "fp32"
    dtype = torch.bfloat16 if precision == "bf16" else None
    if channels_last == "auto":
        channels_last = True
    return Precision(device, dtype, bool(channels_last))
