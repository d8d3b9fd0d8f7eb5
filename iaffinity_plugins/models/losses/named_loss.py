"""The part every iaffinity loss shares: a weight and a loss-dict key."""
import torch.nn as nn


class NamedLoss(nn.Module):
    """Base class of a weighted loss reported under ``loss_name``.

    mmengine back-propagates only the loss-dict items whose key starts with
    ``loss_``, so any other name is refused.

    Args:
        loss_weight (float): Weight of the loss.
        loss_name (str): Key in the loss dict, must start with 'loss_'.
    """

    def __init__(self, loss_weight: float, loss_name: str):
        super().__init__()
        if not loss_name.startswith('loss_'):
            raise ValueError(f"loss_name must start with 'loss_', got "
                             f'{loss_name!r}')
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    @property
    def loss_name(self) -> str:
        """Key of this loss in the loss dict."""
        return self._loss_name
