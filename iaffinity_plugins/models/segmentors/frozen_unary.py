"""The common part of every pairwise refiner: a frozen unary segmentor.

Shapes: N batch, K classes (background included), H x W input size.

A pairwise net g_t refines the probabilities alpha_u of the step's trained
unary net f_t. :class:`FrozenUnaryRefiner` builds f_t from its config, loads
its checkpoint, keeps it frozen in eval mode and recomputes alpha_u on demand
(never stored: ~80 GB at VOC scale). Subclasses add the trainable part and
define

* ``refine(inputs, unary_probs) -> (refined logits (N, K, H, W), features)``
  (the E-step alpha_p),
* ``apply_affinity(inputs, a, data_samples=None) -> (N, K', H, W)`` (the
  affinity applied to any class map, for the energy J = <a, a - G a>; the
  samples for a G that depends on alpha_u),
* ``loss`` and ``extract_feat``.

The EM loop (``engine/em_loop.py``) fills in ``unary`` and
``unary_checkpoint`` and only uses this interface.
"""
import os.path as osp
from abc import abstractmethod
from typing import List, Optional, Tuple, Union

import torch
import torch.nn as nn
from mmengine.runner import load_checkpoint
from mmseg.models.segmentors import BaseSegmentor
from mmseg.structures import SegDataSample
from torch import Tensor

from iaffinity_plugins.labels.scores import unary_scores
from iaffinity_plugins.registry import MODELS


class FrozenUnaryRefiner(BaseSegmentor):
    """Base class of the pairwise refiners: a frozen mmseg segmentor.

    Args:
        unary (dict): mmseg segmentor config of the unary net (e.g. an
            ``EncoderDecoder``); frozen and kept in eval mode.
        unary_checkpoint (str, optional): checkpoint of the unary net, loaded
            with mmengine's ``load_checkpoint`` (``weights_only`` loads).
        data_preprocessor (dict | nn.Module, optional): usually a
            ``SegDataPreProcessor``.
        restrict_to_tags (bool): zero the unary probabilities of classes
            absent from the image tags (``metainfo['tags']``).
        ignore_index (int): label of unknown pixels. Default: 255.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self,
                 unary: dict,
                 unary_checkpoint: Optional[str] = None,
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 restrict_to_tags: bool = True,
                 ignore_index: int = 255,
                 init_cfg: Optional[dict] = None):
        if isinstance(data_preprocessor, dict):
            # built from mmseg's registry so the model builds outside a
            # runner's default scope too
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        name = type(self).__name__
        if unary is None:
            raise ValueError(f'{name}: the unary segmentor config is '
                             'missing (model.unary is None)')
        self.unary = MODELS.build(unary)
        if unary_checkpoint is not None:
            if not osp.isfile(unary_checkpoint):
                raise FileNotFoundError(
                    f'{name}: unary_checkpoint {unary_checkpoint!r} '
                    'does not exist')
            load_checkpoint(self.unary, unary_checkpoint, map_location='cpu',
                            logger='current')
        self.unary.requires_grad_(False)
        self.unary.eval()
        self.restrict_to_tags = restrict_to_tags
        self.ignore_index = ignore_index
        self.align_corners = False  # read by postprocess_result

    def init_weights(self) -> None:
        """Initialise the trainable parts only: the unary holds trained
        weights."""
        for name, child in self.named_children():
            if name != 'unary' and hasattr(child, 'init_weights'):
                child.init_weights()

    def train(self, mode: bool = True) -> 'FrozenUnaryRefiner':
        """Set train/eval mode; the frozen unary always stays in eval."""
        super().train(mode)
        # BatchNorm/Dropout of the unary must not change with the pairwise
        # net's training: its probabilities are the fixed input alpha_u.
        self.unary.eval()
        return self

    @torch.no_grad()
    def unary_probs(self, inputs: Tensor,
                    data_samples: List[SegDataSample]) -> Tensor:
        """Unary probabilities alpha_u (N, K, H, W) at input size.

        Softmax of ``unary.encode_decode``; with ``restrict_to_tags`` the
        classes absent from ``metainfo['tags']`` get probability 0
        (background is always kept).
        """
        if self.restrict_to_tags:
            return unary_scores(self.unary, inputs, data_samples)
        shape = tuple(inputs.shape[2:])
        # encode_decode resizes to the metas' shape: make it the input's
        metas = [{**sample.metainfo, 'img_shape': shape, 'pad_shape': shape}
                 for sample in data_samples]
        return self.unary.encode_decode(inputs, metas).softmax(1)

    @abstractmethod
    def refine(self, inputs: Tensor,
               unary_probs: Tensor) -> Tuple[Tensor, Tensor]:
        """Refined logits (N, K, H, W) and the pairwise net's features."""

    @abstractmethod
    def apply_affinity(self, inputs: Tensor, a: Tensor,
                       data_samples: Optional[List[SegDataSample]] = None
                       ) -> Tensor:
        """The learned affinity G applied to a class map a (N, K', H, W);
        ``data_samples`` (the image tags) where G depends on alpha_u."""

    def encode_decode(self, inputs: Tensor,
                      batch_img_metas: List[dict]) -> Tensor:
        """Refined logits (N, K, H, W); metas need ``tags`` if restricting."""
        samples = [SegDataSample(metainfo=meta) for meta in batch_img_metas]
        return self.refine(inputs, self.unary_probs(inputs, samples))[0]

    def predict(self,
                inputs: Tensor,
                data_samples: Optional[List[SegDataSample]] = None
                ) -> List[SegDataSample]:
        """Refined ``seg_logits`` and ``pred_sem_seg`` at ``ori_shape``."""
        logits = self._forward(inputs, data_samples)
        return self.postprocess_result(logits, data_samples)

    def _forward(self,
                 inputs: Tensor,
                 data_samples: Optional[List[SegDataSample]] = None
                 ) -> Tensor:
        """Refined logits (N, K, H, W)."""
        if data_samples is None:
            if self.restrict_to_tags:
                raise ValueError(f'{type(self).__name__}: restrict_to_tags '
                                 "needs data samples with metainfo['tags']")
            data_samples = [SegDataSample() for _ in range(inputs.shape[0])]
        return self.refine(inputs, self.unary_probs(inputs, data_samples))[0]

    @staticmethod
    def _labels(data_samples: List[SegDataSample]) -> Tensor:
        """(N, H, W) int64 training labels from ``gt_sem_seg``."""
        return torch.stack(
            [sample.gt_sem_seg.data[0] for sample in data_samples]).long()
