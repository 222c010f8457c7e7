"""The minutiae network: a small fully convolutional net with outputs at stride 8.

Input ``image``: (N, 1, H, W) float32, a 500 ppi print normalised as
:func:`models.training.data.normalise` does, H and W multiples of 8. Outputs, each at
(H/8, W/8):

* ``heat``      (N, 1, h, w) logit that the cell holds a minutia;
* ``offset``    (N, 2, h, w) where in the cell (x, y), in [0, 1] after a sigmoid (applied here);
* ``direction`` (N, 2, h, w) cos and sin of the ISO 19794-2 angle, unit length (normalised here);
* ``kind``      (N, 1, h, w) logit of "bifurcation" (ending below 0).
"""

from __future__ import annotations

import torch
from torch import nn


def _block(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class MinutiaeNet(nn.Module):
    """Stem to stride 8, a dilated context stack, and four 1x1 heads."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        w1, w2, w3 = width // 2, width, width * 3 // 2
        self.features = nn.Sequential(
            _block(1, w1, stride=2),
            _block(w1, w1),
            _block(w1, w2, stride=2),
            _block(w2, w2),
            _block(w2, w3, stride=2),
            _block(w3, w3),
            _block(w3, w3, dilation=2),
            _block(w3, w3, dilation=4),
            _block(w3, w3, dilation=2),
            _block(w3, w3),
        )
        self.head = nn.Conv2d(w3, 6, 1)

    def forward(self, image: torch.Tensor):
        f = self.head(self.features(image))
        heat = f[:, 0:1]
        offset = torch.sigmoid(f[:, 1:3])
        d = f[:, 3:5]
        direction = d / torch.sqrt((d * d).sum(dim=1, keepdim=True) + 1e-6)
        kind = f[:, 5:6]
        return heat, offset, direction, kind
