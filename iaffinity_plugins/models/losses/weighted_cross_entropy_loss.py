"""Pixel cross-entropy with a background weight, over the labelled pixels."""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from iaffinity_plugins.registry import MODELS
from .named_loss import NamedLoss


@MODELS.register_module()
class BackgroundWeightedCrossEntropyLoss(NamedLoss):
    """Cross-entropy whose background pixels count ``background_weight``.

    Weakly supervised labels are mostly background (81 % of the labelled
    pixels of the photo demo's refined labels), so a unary net trained on
    them learns to give an object's uncertain margin to the background.
    Weighting the background class down is the usual answer; mmseg's
    ``CrossEntropyLoss(class_weight=...)`` cannot do it on labels with
    unknown pixels (mmseg 1.2.2 indexes the class weights with 255).

    With ``w_y = background_weight`` for class 0 and 1 for every other class,
    the loss is the weighted mean over the labelled pixels ``i``::

        loss = sum_i w_{y_i} v_i CE_i / sum_i w_{y_i} v_i

    where ``v_i`` is the optional pixel weight the decode head passes, 1
    without one. A batch with no labelled pixel gives 0.

    Args:
        background_weight (float): Weight of the background class (class 0)
            relative to the object classes; 1 is plain cross-entropy.
            Default: 1.0.
        loss_weight (float): Weight of the loss. Default: 1.0.
        loss_name (str): Name of the loss item; ``loss_`` must be its prefix.
            Default: 'loss_ce'.
    """

    def __init__(self,
                 background_weight: float = 1.0,
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_ce'):
        super().__init__(loss_weight, loss_name)
        if background_weight < 0:
            raise ValueError(f'background_weight must be >= 0, got '
                             f'{background_weight}')
        self.background_weight = background_weight

    def forward(self,
                cls_score: Tensor,
                label: Tensor,
                weight: Optional[Tensor] = None,
                ignore_index: int = 255,
                **kwargs) -> Tensor:
        """Weighted loss.

        Args:
            cls_score (Tensor): Class logits of shape (N, K, H, W).
            label (Tensor): Labels of shape (N, H, W), ``ignore_index`` for
                unknown pixels.
            weight (Tensor, optional): Pixel weights of shape (N, H, W).
            ignore_index (int): The unknown label. Default: 255.
            kwargs: The decode head's other loss arguments, unused.

        Returns:
            Tensor: The scalar loss.
        """
        if cls_score.shape[:1] + cls_score.shape[2:] != label.shape:
            raise ValueError(f'cls_score {tuple(cls_score.shape)} and label '
                             f'{tuple(label.shape)} must agree in N, H, W')
        labelled = label != ignore_index
        target = torch.where(labelled, label, torch.zeros_like(label))
        pixel_loss = F.cross_entropy(cls_score, target, reduction='none')
        class_weight = torch.where(
            target == 0, torch.full_like(pixel_loss, self.background_weight),
            torch.ones_like(pixel_loss))
        pixel_weight = class_weight * labelled
        if weight is not None:
            pixel_weight = pixel_weight * weight
        total = (pixel_weight * pixel_loss).sum()
        return self.loss_weight * total / pixel_weight.sum().clamp(min=1e-12)
