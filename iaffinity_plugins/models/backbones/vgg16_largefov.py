"""DeepLab's VGG16 backbone (DeepLab-v1 LargeFOV / DeepLab-v2 VGG16).

Shapes: N batch, H x W input size. The output stride is 8: pool1-pool3
halve the resolution (ceil mode, so a 321 x 321 input gives 41 x 41 maps as in
DeepLab), pool4/pool5 keep it, and conv5 is dilated by 2 to keep the
receptive field of the original network.
"""
from typing import List, Optional, Sequence, Tuple

import torch.nn as nn
from mmengine.model import BaseModule
from torch import Tensor

from iaffinity_plugins.registry import MODELS

# (number of 3x3 convs, channels, stride of the pool after the stage,
#  dilation of the stage's convs), stage by stage: VGG16 configuration "D"
# with DeepLab's stride and dilation changes in stages 4 and 5.
STAGE_SPECS = (
    (2, 64, 2, 1),
    (2, 128, 2, 1),
    (3, 256, 2, 1),
    (3, 512, 1, 1),
    (3, 512, 1, 2),
)


def _make_features() -> Tuple[nn.Sequential, List[int]]:
    """The conv stack, indexed like torchvision's ``vgg16().features``.

    Returns:
        tuple: the ``nn.Sequential`` and, for each stage, the index of its
        pooling layer (where the stage's output is taken).
    """
    layers: List[nn.Module] = []
    stage_ends: List[int] = []
    in_channels = 3
    for num_convs, channels, pool_stride, dilation in STAGE_SPECS:
        for _ in range(num_convs):
            layers += [
                nn.Conv2d(in_channels, channels, 3, padding=dilation,
                          dilation=dilation),
                nn.ReLU(inplace=True)
            ]
            in_channels = channels
        # DeepLab's pools are 3x3 with padding 1 (torchvision's are 2x2):
        # the indices still match because pools have no parameters.
        layers.append(
            nn.MaxPool2d(3, stride=pool_stride, padding=1, ceil_mode=True))
        stage_ends.append(len(layers) - 1)
    return nn.Sequential(*layers), stage_ends


@MODELS.register_module()
class VGG16LargeFOV(BaseModule):
    """VGG16 as used by DeepLab-v1/v2 (output stride 8).

    ``features`` has exactly torchvision's ``vgg16().features`` indices, so
    a torchvision vgg16 state_dict loads into it with no missing or unexpected
    conv keys, e.g. ``init_cfg=dict(type='Pretrained',
    checkpoint='/local/vgg16-397923af.pth')`` (a local path: nothing is
    downloaded). Torchvision's ``classifier.*`` keys are reported as unexpected
    and ignored: its fc6/fc7 are fully connected layers over a 7 x 7 input,
    not the convolutional (dilated) fc6/fc7 of DeepLab. Those are new layers
    that live in :class:`~iaffinity_plugins.models.heads.DeepLabV2Head`
    (one branch, dilation 12, 1024 channels = LargeFOV) on top of this
    backbone's pool5 features.

    Args:
        out_indices (Sequence[int]): Stages whose pooled outputs are returned,
            0..4 = pool1..pool5 with (64, 128, 256, 512, 512) channels at
            strides (2, 4, 8, 8, 8). Default: (4,).
        init_cfg (dict, optional): mmengine init config. Default: None.
    """

    out_channels = tuple(spec[1] for spec in STAGE_SPECS)

    def __init__(self,
                 out_indices: Sequence[int] = (4, ),
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg)
        out_indices = tuple(out_indices)
        if not out_indices or not all(
                0 <= i < len(STAGE_SPECS) for i in out_indices):
            raise ValueError(f'out_indices must be a non-empty subset of '
                             f'0..{len(STAGE_SPECS) - 1}, got {out_indices}')
        self.out_indices = out_indices
        self.features, self._stage_ends = _make_features()

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """Run the conv stack.

        Args:
            x (Tensor): Images of shape (N, 3, H, W).

        Returns:
            tuple[Tensor]: One map per ``out_indices`` entry, of shape
            (N, C_i, h_i, w_i), e.g. (N, 512, h, w) for pool5 with
            h = ceil-mode H / 8.
        """
        wanted = {self._stage_ends[i]: i for i in self.out_indices}
        outs = {}
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in wanted:
                outs[wanted[index]] = x
            if len(outs) == len(wanted):
                # Later stages are not needed: skip their compute.
                break
        return tuple(outs[i] for i in self.out_indices)
