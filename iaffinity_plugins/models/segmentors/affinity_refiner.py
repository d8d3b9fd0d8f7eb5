"""PSA's AffinityNet (Ahn & Kwak, CVPR 2018) as the pairwise stage g_t.

Shapes: N batch, K classes (background included), H x W input size,
h x w affinity size (the backbone's stride, 8 in PSA), P half-disc
neighbour offsets.

The "iterative PSA" of the paper's Sec. 4.4 / Table 3: in place of the SPN,
the pairwise net is an AffinityNet (any mmseg backbone +
:class:`~iaffinity_plugins.models.heads.AffinityHead`) trained with PSA's
affinity loss on pairs labelled from Y_t; alpha_p is the unary alpha_u after
PSA's random walk (``beta``, ``num_iters`` steps) on the learned affinities,
computed banded (:mod:`~iaffinity_plugins.models.ops.banded_affinity`).
Unlike the SPN refiner, training needs no unary forward: the loss only looks
at the affinities and the labels.
"""
from typing import Dict, List, Optional, Tuple, Union

import torch.nn as nn
from mmseg.structures import SegDataSample
from torch import Tensor

from iaffinity_plugins.registry import MODELS
from ..losses.superpixel_smoothness_loss import resize_nearest_ids
from .frozen_unary import FrozenUnaryRefiner


@MODELS.register_module()
class AffinityRefiner(FrozenUnaryRefiner):
    """A trainable AffinityNet on top of a frozen mmseg segmentor.

    Args:
        unary (dict): mmseg segmentor config of the unary net; frozen (see
            :class:`FrozenUnaryRefiner`). The EM loop fills it in.
        backbone (dict): Any mmseg backbone config; its outputs feed the head.
        head (dict): :class:`AffinityHead` config (levels, radius, beta,
            num_iters).
        unary_checkpoint (str, optional): Checkpoint of the unary net.
        loss_affinity (dict): :class:`AffinityLoss` config.
        data_preprocessor (dict | nn.Module, optional): Usually a
            ``SegDataPreProcessor``.
        restrict_to_tags (bool): Zero the unary probabilities of classes
            absent from the image tags.
        ignore_index (int): Label of unknown pixels. Default: 255.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self,
                 unary: dict,
                 backbone: dict,
                 head: dict,
                 unary_checkpoint: Optional[str] = None,
                 loss_affinity: dict = dict(type='AffinityLoss'),
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 restrict_to_tags: bool = True,
                 ignore_index: int = 255,
                 init_cfg: Optional[dict] = None):
        super().__init__(unary, unary_checkpoint=unary_checkpoint,
                         data_preprocessor=data_preprocessor,
                         restrict_to_tags=restrict_to_tags,
                         ignore_index=ignore_index, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.head = MODELS.build(head)
        self.loss_affinity = MODELS.build(loss_affinity)

    def extract_feat(self, inputs: Tensor) -> Tuple[Tensor, ...]:
        """The backbone's outputs for images (N, 3, H, W)."""
        return tuple(self.backbone(inputs))

    def affinity(self, inputs: Tensor) -> Tensor:
        """Half-disc affinities (N, P, h, w) of images (N, 3, H, W)."""
        return self.head(self.extract_feat(inputs))

    def refine(self, inputs: Tensor,
               unary_probs: Tensor) -> Tuple[Tensor, Tensor]:
        """Refined logits (N, K, H, W) after ``num_iters`` walk steps, and
        the affinities (N, P, h, w)."""
        affinity = self.affinity(inputs)
        return self.head.refine(unary_probs, affinity), affinity

    def apply_affinity(self, inputs: Tensor, a: Tensor,
                       data_samples: Optional[List[SegDataSample]] = None
                       ) -> Tensor:
        """One random-walk step, lifted: ``a + up(T down(a) - down(a))``.

        Args:
            inputs (Tensor): (N, 3, H, W) images.
            a (Tensor): (N, K', H, W) any class map (e.g. one-hot labels).
            data_samples (list[SegDataSample], optional): unused: this G
                does not depend on alpha_u (the refiners' interface).

        Returns:
            Tensor: (N, K', H, W); the G of the energy J = <a, a - G a>.
        """
        return self.head.propagate(a, self.affinity(inputs), num_iters=1)

    def loss(self, inputs: Tensor,
             data_samples: List[SegDataSample]) -> Dict[str, Tensor]:
        """PSA's affinity loss against ``gt_sem_seg`` at the affinity size.

        The labels are resized to (h, w) by nearest neighbour, as PSA
        rescales its label maps by 1/8.
        """
        affinity = self.affinity(inputs)
        labels = resize_nearest_ids(self._labels(data_samples),
                                    affinity.shape[2:])
        return {
            self.loss_affinity.loss_name:
            self.loss_affinity(affinity, labels, self.head.offsets,
                               ignore_index=self.ignore_index)
        }
