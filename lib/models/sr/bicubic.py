"""Bicubic: the baseline without learned super-resolution.

The data pipeline resizes the LR image to the network size by bicubic interpolation
(``input_interpolation = 'bicubic'``); the module returns that image unchanged and has no parameters.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Bicubic"]


class Bicubic(nn.Module):
    """The identity on the bicubic-resized LR image: ``forward(x)`` returns ``x`` itself."""

    #: How the LR image is resized to the network size before it enters the module.
    input_interpolation: str = "bicubic"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x
