"""Multi-label soft-margin loss of the CAM classifier (image-level tags)."""
import torch.nn.functional as F
from torch import Tensor

from iaffinity_plugins.registry import MODELS
from .named_loss import NamedLoss


@MODELS.register_module()
class MultiLabelSoftMarginLoss(NamedLoss):
    """Mean over images and classes of the per-class logistic loss.

    ``loss = -mean_{n,c} [y log sigmoid(x) + (1 - y) log sigmoid(-x)]``,
    i.e. :func:`torch.nn.functional.multilabel_soft_margin_loss`.

    Args:
        loss_weight (float): Weight of the loss. Default: 1.0.
        loss_name (str): Name of the loss item; ``loss_`` must be its prefix
            for the item to be back-propagated. Default: 'loss_cls'.
    """

    def __init__(self, loss_weight: float = 1.0, loss_name: str = 'loss_cls'):
        super().__init__(loss_weight, loss_name)

    def forward(self, cls_score: Tensor, label: Tensor) -> Tensor:
        """Weighted loss.

        Args:
            cls_score (Tensor): Class logits of shape (N, C).
            label (Tensor): Multi-hot targets in {0, 1} of shape (N, C).

        Returns:
            Tensor: The scalar loss.
        """
        if cls_score.shape != label.shape:
            raise ValueError(f'cls_score {tuple(cls_score.shape)} and label '
                             f'{tuple(label.shape)} must have the same shape')
        return self.loss_weight * F.multilabel_soft_margin_loss(
            cls_score, label.to(cls_score.dtype))
