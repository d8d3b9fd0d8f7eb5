"""CAM classifier (Sec. 3.2.1, after Zhou et al. 2016 / Ahn and Kwak 2018).

Shapes: N batch, C backbone channels, K-1 foreground classes (background is
never a tag), H x W input size, h x w feature size.

A backbone, global average pooling and a bias-free 1x1 classifier trained on
image-level tags with the multi-label soft-margin loss. Because pooling and
the classifier are both linear, applying the classifier to the feature map
before pooling gives the class activation maps whose spatial mean is exactly
the class logit.
"""
from typing import Dict, List, Optional, Union

import torch.nn as nn
from mmengine.model import BaseModel
from mmseg.structures import SegDataSample
from torch import Tensor

from iaffinity_plugins.labels.scores import stack_tags
from iaffinity_plugins.registry import MODELS


@MODELS.register_module()
class CAMClassifier(BaseModel):
    """Multi-label image classifier whose 1x1 classifier gives CAMs.

    Args:
        backbone (dict): Any mmseg backbone config.
        in_channels (int): Channels C of the backbone output used.
        num_classes (int): Number of foreground classes K-1.
        in_index (int): Which backbone output to use. Default: -1.
        loss_cls (dict): Loss config, called as ``loss(logits (N, K-1),
            tags (N, K-1))``. Default: multi-label soft margin.
        data_preprocessor (dict | nn.Module, optional): Usually a
            ``SegDataPreProcessor``; built from mmseg's registry so the model
            can be built outside a runner's default scope.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self,
                 backbone: dict,
                 in_channels: int,
                 num_classes: int,
                 in_index: int = -1,
                 loss_cls: dict = dict(type='MultiLabelSoftMarginLoss'),
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 init_cfg: Optional[dict] = None):
        if isinstance(data_preprocessor, dict):
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        if num_classes < 1:
            raise ValueError(f'num_classes (foreground classes) must be >= 1, '
                             f'got {num_classes}')
        self.backbone = MODELS.build(backbone)
        self.in_index = in_index
        self.num_classes = num_classes
        # No bias: a bias would add a constant to every CAM pixel and make
        # the maps depend on the image size through the mean.
        self.classifier = nn.Conv2d(in_channels, num_classes, 1, bias=False)
        self.loss_cls = MODELS.build(loss_cls)

    def cam(self, inputs: Tensor) -> Tensor:
        """Raw class activation maps.

        Args:
            inputs (Tensor): Normalised images of shape (N, 3, H, W).

        Returns:
            Tensor: CAMs of shape (N, K-1, h, w) (no ReLU, no normalisation).
        """
        feats = self.backbone(inputs)[self.in_index]
        return self.classifier(feats)

    def forward(self,
                inputs: Tensor,
                data_samples: Optional[List[SegDataSample]] = None,
                mode: str = 'tensor') -> Union[Dict[str, Tensor], Tensor]:
        """Classify images.

        Args:
            inputs (Tensor): Normalised images of shape (N, 3, H, W).
            data_samples (list[SegDataSample], optional): Needed for
                ``mode='loss'``; ``metainfo['tags']`` is a (K-1,) multi-hot
                array or tensor.
            mode (str): 'loss' -> ``dict(loss_cls=...)``; 'tensor' and
                'predict' -> class logits of shape (N, K-1) (the classifier
                is not evaluated by mmseg metrics, so 'predict' does not
                wrap the logits into data samples).

        Returns:
            dict[str, Tensor] | Tensor: Losses or logits.
        """
        # Mean of the CAM = classifier of the pooled features (both linear).
        logits = self.cam(inputs).mean(dim=(2, 3))
        if mode in ('tensor', 'predict'):
            return logits
        if mode != 'loss':
            raise ValueError(f"mode must be 'loss', 'predict' or 'tensor', "
                             f'got {mode!r}')
        if data_samples is None:
            raise ValueError("CAMClassifier: mode='loss' needs data_samples "
                             "with metainfo['tags']")
        tags = stack_tags(data_samples, self.num_classes).to(logits.device)
        return {self.loss_cls.loss_name: self.loss_cls(logits, tags)}
