"""ResNet18 (He et al. 2016) for single-channel radio images, written here: no torchvision, no
pretrained weights. ``width`` scales every stage (64·width, …, 512·width channels), so the
average-pooled feature has 512·width dimensions (512 at width 1, as papers 000 and 001 use).
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["BasicBlock", "ResNet18"]


class BasicBlock(nn.Module):
    """y = ReLU(F(x) + S(x)); F = conv3x3-BN-ReLU-conv3x3-BN, S = identity or 1x1 conv-BN on a shape change."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(h)) + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet18 encoder: stem, four stages of two BasicBlocks, global average pool -> (N, feature_dim).

    stem="imagenet": conv7x7/2 + maxpool3x3/2 (the original); stem="small": conv3x3/1, no pooling.
    """

    def __init__(self, in_channels: int = 1, width: float = 1.0, stem: str = "imagenet"):
        super().__init__()
        widths = [max(4, int(round(c * width))) for c in (64, 128, 256, 512)]
        if stem == "imagenet":
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, widths[0], 7, 2, 3, bias=False),
                nn.BatchNorm2d(widths[0]),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(3, 2, 1),
            )
        elif stem == "small":
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True)
            )
        else:
            raise ValueError(f"unknown stem {stem!r}; use 'imagenet' or 'small'")
        stages, c = [], widths[0]
        for i, w in enumerate(widths):
            stages.append(nn.Sequential(BasicBlock(c, w, 1 if i == 0 else 2), BasicBlock(w, w)))
            c = w
        self.stages = nn.Sequential(*stages)
        self.feature_dim = widths[-1]
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        for block in self.modules():  # zero-init the last BN of each residual branch (Goyal et al. 2017)
            if isinstance(block, BasicBlock):
                nn.init.zeros_(block.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x)).mean(dim=(2, 3))
