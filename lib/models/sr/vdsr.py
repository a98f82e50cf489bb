"""VDSR: "Accurate Image Super-Resolution Using Very Deep Convolutional Networks" (Kim et al., CVPR 2016).

Layout (paper Sec. 3, Fig. 2):

    3→w conv 3×3 + ReLU;  (depth-2) × [w→w conv 3×3 → ReLU];  w→3 conv 3×3
    output = input + residual(input)        (the paper's global residual learning)

with ``depth = 20`` and ``w = 64`` in the paper: 664,704 weights on the luminance channel the paper
uses, 667,008 on our 3 RGB channels (no biases). The input is the LR image already interpolated to
the output size (the paper uses bicubic; our pipeline resizes it bilinearly, ``input_interpolation``),
so the network does not upsample.

Choices: the convs have no bias and He-normal init (the paper initialises with He et al.'s method;
here ``kaiming_normal_``, ``fan_out``, ReLU gain — the ``normal(0, sqrt(2 / (k·k·C_out)))`` of the
VDSR reference implementations). The paper's adjustable gradient clipping belongs to the optimiser,
not to the module.

``init='identity'`` (an option, not in the paper) zeroes the tail conv, so that G starts as the identity map: its
output is its interpolated input, and the first updates improve on it instead of undoing a random residual.
Subclasses may open further paths in :meth:`init_identity` (VDSR-CA: its attention gates). ``init='authors'`` is
the PS-HRNet release's loop over *every* ``nn.Conv2d`` (``PS-HRNet.ipynb``, class ``VDSR``): ``normal(0,
sqrt(2 / n))``, ``n = k·k·C_out``, biases untouched — for VDSR the same distribution as ``he``; for VDSR-CA it
also re-draws the channel attention's 1×1 convs (:meth:`init_authors`).

Subclasses change the body blocks through :meth:`VDSR._block` alone (see
:class:`~lib.models.sr.vdsr_ca.VDSRCA`, which inserts channel attention after each body conv).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["VDSR", "INITS"]

#: Initialisations: ``he`` (the paper's), ``authors`` (the PS-HRNet release's: every conv, 1×1 ones included,
#: ``normal(0, sqrt(2 / (k·k·C_out)))``), ``identity`` (start as the identity map; an option).
INITS = ("he", "authors", "identity")


class VDSR(nn.Module):
    """VDSR (Kim et al., CVPR 2016).

    Args:
        depth: number of 3×3 conv layers (paper: 20), >= 2.
        width: channels of the hidden layers (paper: 64).
        in_channels: image channels (3).
        init: ``'he'`` (paper: He-normal convs) or ``'identity'`` (He-normal, then :meth:`init_identity`).

    ``forward(x)`` maps a ``(B, C, H, W)`` image (the LR image resized to the network size) to
    ``x + residual(x)`` of the same shape.

    Modules: ``head`` (``Sequential(conv, ReLU)``), ``body`` (``depth - 2`` blocks, each built by
    :meth:`_block`), ``tail`` (the last conv, no activation).
    """

    #: How the LR image is resized to the network size before it enters the module.
    input_interpolation: str = "bilinear"

    def __init__(self, depth: int = 20, width: int = 64, in_channels: int = 3, init: str = "he") -> None:
        super().__init__()
        if depth < 2:
            raise ValueError(f"depth: expected >= 2, found {depth}")
        if init not in INITS:
            raise ValueError(f"init: expected one of {INITS}, found {init!r}")
        self.depth = depth
        self.width = width
        self.head = nn.Sequential(self._conv(in_channels, width), nn.ReLU(inplace=True))
        self.body = nn.Sequential(*[self._block(width) for _ in range(depth - 2)])
        self.tail = self._conv(width, in_channels)
        self.reset_parameters()
        if init == "identity":
            self.init_identity()
        elif init == "authors":
            self.init_authors()

    @staticmethod
    def _conv(in_channels: int, out_channels: int) -> nn.Conv2d:
        """A bias-free 3×3 'same' convolution."""
        return nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)

    def _block(self, width: int) -> nn.Sequential:
        """One body block, ``Sequential(conv 3×3, ReLU)``; the hook subclasses override.

        Called once per block, in order, during ``__init__``, after ``head`` and before ``tail`` are built.
        An override may insert layers between the two (keep the conv at index 0 so that state-dict
        keys ``body.<i>.0.weight`` stay those of VDSR).
        """
        return nn.Sequential(self._conv(width, width), nn.ReLU(inplace=True))

    def reset_parameters(self) -> None:
        """He-normal init (``fan_out``, ReLU gain) of every 3×3 conv; other layers keep their own init."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    @torch.no_grad()
    def init_authors(self) -> None:
        """Every conv (1×1 included) ``normal(0, sqrt(2 / (k·k·C_out)))``, biases as they are: the PS-HRNet release."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                m.weight.normal_(0.0, (2.0 / n) ** 0.5)

    @torch.no_grad()
    def init_identity(self) -> None:
        """Zero the tail conv: ``residual(x) = 0``, so the module starts as the identity map."""
        self.tail.weight.zero_()

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        """``tail(body(head(x)))``: the predicted residual image."""
        return self.tail(self.body(self.head(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.residual(x)

    def extra_repr(self) -> str:
        return f"depth={self.depth}, width={self.width}"
