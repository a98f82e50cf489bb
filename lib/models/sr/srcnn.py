"""SRCNN: "Learning a Deep Convolutional Network for Image Super-Resolution" (Dong et al., ECCV 2014;
extended as "Image Super-Resolution Using Deep Convolutional Networks", TPAMI 2016).

Three convolutions, patch extraction → non-linear mapping → reconstruction:

    C→n1 conv f1×f1 + ReLU;  n1→n2 conv f2×f2 + ReLU;  n2→C conv f3×f3
    output = the reconstruction itself (no residual, as in the paper)

``9-5-5`` with ``n1 = 64``, ``n2 = 32`` is the paper's larger setting (the base network is 9-1-5);
on 3 channels with biases it has 69,251 parameters. The input is the LR image already
interpolated to the output size (the paper uses bicubic; our pipeline resizes it bilinearly,
``input_interpolation``).

Adaptations:

* 'same' zero padding (``f // 2``) so that the output has the input's size; the paper uses valid
  convolutions and compares against the central crop of the target.
* Init: PyTorch's default (Kaiming-uniform, ``a = sqrt(5)``) rather than the paper's
  ``normal(0, 0.001)`` weights and zero biases, which learn very slowly with Adam/SGD at the rates of our
  pipeline (the paper trains with SGD for ~10⁸ back-propagations, and a lower rate on the last layer).
* Three colour channels in and out (the paper's main results use the luminance channel only).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["SRCNN"]


class SRCNN(nn.Module):
    """SRCNN (Dong et al., ECCV 2014 / TPAMI 2016) with 'same' padding.

    Args:
        in_channels: image channels ``C`` (3).
        f1, f2, f3: kernel sizes of the three convs (9-5-5); odd, so 'same' padding is symmetric.
        n1, n2: channels of the two hidden layers (64, 32).

    ``forward(x)`` maps a ``(B, C, H, W)`` image (the LR image resized to the network size) to the
    reconstructed image of the same shape.
    """

    #: How the LR image is resized to the network size before it enters the module.
    input_interpolation: str = "bilinear"

    def __init__(
        self, in_channels: int = 3, f1: int = 9, f2: int = 5, f3: int = 5, n1: int = 64, n2: int = 32
    ) -> None:
        super().__init__()
        for name, f in (("f1", f1), ("f2", f2), ("f3", f3)):
            if f < 1 or f % 2 == 0:
                raise ValueError(f"{name}: expected an odd kernel size >= 1, found {f}")
        self.kernel_sizes = (f1, f2, f3)
        self.widths = (n1, n2)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, n1, f1, padding=f1 // 2),  # patch extraction and representation
            nn.ReLU(inplace=True),
            nn.Conv2d(n1, n2, f2, padding=f2 // 2),  # non-linear mapping
            nn.ReLU(inplace=True),
        )
        self.reconstruction = nn.Conv2d(n2, in_channels, f3, padding=f3 // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.reconstruction(self.features(x))

    def extra_repr(self) -> str:
        f1, f2, f3 = self.kernel_sizes
        return f"{f1}-{f2}-{f3}, n1={self.widths[0]}, n2={self.widths[1]}"
