"""DeepLab-v2 decode head: atrous spatial pyramid pooling with SUMMED branches.

Shapes: N batch, C in_channels, K num_classes, h x w feature size.

Unlike mmseg's ``ASPPHead`` (DeepLab-v3: concatenated branches, then one
classifier), every DeepLab-v2 branch is a small classifier of its own
(fc6 3x3 dilated -> fc7 1x1 -> fc8 1x1 to K classes) and the branches' class
scores are added. One branch with dilation 12 and 1024 channels is DeepLab's
LargeFOV (the fc6/fc7/fc8 of DeepLab-VGG16); dilations (6, 12, 18, 24) is
ASPP-L.
"""
from typing import List, Sequence, Tuple, Union

import torch.nn as nn
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from torch import Tensor

from iaffinity_plugins.registry import MODELS

# Kaiming for fc6/fc7, Normal(std=0.01) for the fc8 classifiers as DeepLab's
# fc8 (the base class's default targets conv_seg, which this head removes).
DEFAULT_INIT_CFG = [
    dict(type='Kaiming', layer='Conv2d'),
    dict(type='Normal', std=0.01, override=dict(name='fc8')),
]


@MODELS.register_module()
class DeepLabV2Head(BaseDecodeHead):
    """ASPP-sum head of DeepLab-v2, usable on any backbone.

    Args:
        dilations (Sequence[int]): Dilation of each branch's 3x3 fc6; one
            branch per entry. (12,) = LargeFOV, (6, 12, 18, 24) = ASPP-L.
            Default: (6, 12, 18, 24).
        **kwargs: :class:`BaseDecodeHead` arguments (``in_channels``,
            ``channels`` = fc6/fc7 width, 1024 in DeepLab, ``num_classes``,
            ``dropout_ratio`` = the fc6/fc7 dropout, 0.5 in DeepLab, ...).
        init_cfg (dict | list[dict], optional): Default
            :data:`DEFAULT_INIT_CFG`.
    """

    def __init__(self,
                 dilations: Sequence[int] = (6, 12, 18, 24),
                 init_cfg: Union[dict, List[dict], None] = DEFAULT_INIT_CFG,
                 **kwargs):
        # BaseModule deep-copies init_cfg: the shared default is never mutated.
        super().__init__(init_cfg=init_cfg, **kwargs)
        dilations = tuple(dilations)
        if not dilations or not all(
                isinstance(d, int) and d >= 1 for d in dilations):
            raise ValueError('DeepLabV2Head: dilations must be a non-empty '
                             f'sequence of positive ints, got {dilations}')
        if self.input_transform == 'multiple_select':
            raise ValueError('DeepLabV2Head needs one feature map: use '
                             "input_transform=None or 'resize_concat'")
        self.dilations = dilations
        # Each branch has its own fc8 classifier, so the base class's shared
        # classifier (conv_seg) and its dropout would be dead parameters.
        del self.conv_seg, self.dropout
        self.fc67 = nn.ModuleList(self._hidden_layers(d) for d in dilations)
        self.fc8 = nn.ModuleList(
            nn.Conv2d(self.channels, self.out_channels, 1) for _ in dilations)

    def _hidden_layers(self, dilation: int) -> nn.Sequential:
        """fc6 (3x3, dilated) and fc7 (1x1) of one branch, each with ReLU and
        DeepLab's element-wise dropout."""
        return nn.Sequential(
            nn.Conv2d(self.in_channels, self.channels, 3, padding=dilation,
                      dilation=dilation), nn.ReLU(inplace=True),
            nn.Dropout(self.dropout_ratio),
            nn.Conv2d(self.channels, self.channels, 1), nn.ReLU(inplace=True),
            nn.Dropout(self.dropout_ratio))

    def forward(self, inputs: Tuple[Tensor, ...]) -> Tensor:
        """Sum the branches' class scores.

        Args:
            inputs (tuple[Tensor]): Backbone outputs; the one selected by
                ``in_index`` has shape (N, C, h, w).

        Returns:
            Tensor: Class logits of shape (N, K, h, w).
        """
        x = self._transform_inputs(inputs)
        return sum(fc8(fc67(x)) for fc67, fc8 in zip(self.fc67, self.fc8))
