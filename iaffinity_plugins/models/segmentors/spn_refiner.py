"""The pairwise network g_t (Sec. 3.2.2): an SPN head refining a frozen unary.

Shapes: N batch, K classes (background included), H x W input size.

alpha_p = G alpha_u: the unary probabilities alpha_u are recomputed on the
fly from the frozen unary segmentor (never stored: ~80 GB at VOC scale) and
refined by :class:`~iaffinity_plugins.models.heads.SPNHead`. Trained with
cross-entropy on the mined labels Y_t (255 ignored, eq. (7)) plus the
superpixel smoothness loss on the gates (eq. (8)).
"""
import os.path as osp
from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.nn as nn
from mmengine.runner import load_checkpoint
from mmseg.models.segmentors import BaseSegmentor
from mmseg.structures import SegDataSample
from torch import Tensor

from iaffinity_plugins.labels.scores import unary_scores
from iaffinity_plugins.registry import MODELS


@MODELS.register_module()
class SPNRefiner(BaseSegmentor):
    """A trainable SPN head on top of a frozen mmseg segmentor.

    Args:
        unary (dict): mmseg segmentor config of the unary net (e.g. an
            ``EncoderDecoder``); frozen and kept in eval mode.
        head (dict): :class:`SPNHead` config.
        unary_checkpoint (str, optional): checkpoint of the unary net, loaded
            with mmengine's ``load_checkpoint`` (``weights_only`` loads).
        loss_decode (dict): classification loss on the refined logits,
            called with ``ignore_index``.
        loss_smooth (dict, optional): :class:`SuperpixelSmoothnessLoss` on
            the gates; None is the "no L_s" ablation.
        data_preprocessor (dict | nn.Module, optional): usually a
            ``SegDataPreProcessor``.
        restrict_to_tags (bool): zero the unary probabilities of classes
            absent from the image tags (``metainfo['tags']``).
        ignore_index (int): label of unknown pixels. Default: 255.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self,
                 unary: dict,
                 head: dict,
                 unary_checkpoint: Optional[str] = None,
                 loss_decode: dict = dict(
                     type='CrossEntropyLoss', avg_non_ignore=True),
                 loss_smooth: Optional[dict] = dict(
                     type='SuperpixelSmoothnessLoss'),
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
        if unary is None:
            raise ValueError('SPNRefiner: the unary segmentor config is '
                             'missing (model.unary is None)')
        self.unary = MODELS.build(unary)
        if unary_checkpoint is not None:
            if not osp.isfile(unary_checkpoint):
                raise FileNotFoundError(
                    f'SPNRefiner: unary_checkpoint {unary_checkpoint!r} '
                    'does not exist')
            load_checkpoint(self.unary, unary_checkpoint, map_location='cpu')
        self.unary.requires_grad_(False)
        self.unary.eval()
        self.head = MODELS.build(head)
        self.loss_decode = MODELS.build(loss_decode)
        self.loss_smooth = (MODELS.build(loss_smooth)
                            if loss_smooth is not None else None)
        self.restrict_to_tags = restrict_to_tags
        self.ignore_index = ignore_index
        self.align_corners = False  # read by postprocess_result

    def init_weights(self) -> None:
        """Initialise the head only: the unary holds trained weights."""
        self.head.init_weights()

    def train(self, mode: bool = True) -> 'SPNRefiner':
        """Set train/eval mode; the frozen unary always stays in eval."""
        super().train(mode)
        # BatchNorm/Dropout of the unary must not change with the head's
        # training: its probabilities are the fixed input alpha_u.
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

    def refine(self, inputs: Tensor,
               unary_probs: Tensor) -> Tuple[Tensor, Tensor]:
        """Refined logits (N, K, H, W) and raw gates (N, 12 G, h, w)."""
        return self.head(inputs, unary_probs)

    def apply_affinity(self, inputs: Tensor, a: Tensor) -> Tensor:
        """G a for any class map a (N, K', H, W) with the image's gates.

        G is the head's lifted SPN propagation (see
        :mod:`~iaffinity_plugins.models.heads.spn_head`). With the paper's
        head (``propagation_channels=None, output='normalized'``),
        :meth:`refine` returns exactly ``log(G alpha_u)`` renormalised over
        classes, so the E-step, the refined labels and the energy J use one
        operator; with the projected head, :meth:`refine` applies G to
        projected probabilities instead.
        """
        return self.head.apply_affinity(a, self.head.gates(inputs))

    def extract_feat(self, inputs: Tensor) -> Tensor:
        """Gates (N, 12 G, h, w): the features the pairwise net learns."""
        return self.head.gates(inputs)

    def encode_decode(self, inputs: Tensor,
                      batch_img_metas: List[dict]) -> Tensor:
        """Refined logits (N, K, H, W); metas need ``tags`` if restricting."""
        samples = [SegDataSample(metainfo=meta) for meta in batch_img_metas]
        return self.refine(inputs, self.unary_probs(inputs, samples))[0]

    def loss(self, inputs: Tensor,
             data_samples: List[SegDataSample]) -> Dict[str, Tensor]:
        """CE on ``gt_sem_seg`` (+ L_s on the gates with ``gt_superpixels``)."""
        logits, gates = self.refine(inputs,
                                    self.unary_probs(inputs, data_samples))
        labels = torch.stack(
            [sample.gt_sem_seg.data[0] for sample in data_samples]).long()
        losses = {
            self.loss_decode.loss_name:
            self.loss_decode(
                logits, labels, ignore_index=self.ignore_index)
        }
        if self.loss_smooth is not None:
            losses[self.loss_smooth.loss_name] = self.loss_smooth(
                gates, self._superpixels(data_samples))
        return losses

    @staticmethod
    def _superpixels(data_samples: List[SegDataSample]) -> Tensor:
        """(N, H, W) int64 ids from ``data_sample.gt_superpixels``."""
        for sample in data_samples:
            if 'gt_superpixels' not in sample:
                raise KeyError(
                    'SPNRefiner: loss_smooth needs data_sample.gt_superpixels '
                    '(add LoadSuperpixels to the pipeline) but the sample of '
                    f"{sample.metainfo.get('img_path', '?')} has none")
        return torch.stack(
            [sample.gt_superpixels.data[0] for sample in data_samples]).long()

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
                raise ValueError('SPNRefiner: restrict_to_tags needs data '
                                 "samples with metainfo['tags']")
            data_samples = [SegDataSample() for _ in range(inputs.shape[0])]
        return self.refine(inputs, self.unary_probs(inputs, data_samples))[0]
