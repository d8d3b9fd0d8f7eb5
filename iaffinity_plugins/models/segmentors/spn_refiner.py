"""The pairwise network g_t (Sec. 3.2.2): an SPN head refining a frozen unary.

Shapes: N batch, K classes (background included), H x W input size.

alpha_p = G alpha_u: the unary probabilities alpha_u are recomputed on the
fly from the frozen unary segmentor (never stored: ~80 GB at VOC scale) and
refined by :class:`~iaffinity_plugins.models.heads.SPNHead`. Trained with
cross-entropy on the mined labels Y_t (255 ignored, eq. (7)) plus the
superpixel smoothness loss on the gates (eq. (8)); optionally PSA's affinity
loss on the gates' pixel pairs supervises the gates directly (issue #22).
"""
from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.nn as nn
from mmseg.structures import SegDataSample
from torch import Tensor

from iaffinity_plugins.registry import MODELS
from ..losses.superpixel_smoothness_loss import resize_nearest_ids
from ..ops.spn_scan import GATE_OFFSETS, gate_affinity
from .boundary_perturbation import perturb_boundaries
from .frozen_unary import FrozenUnaryRefiner


@MODELS.register_module()
class SPNRefiner(FrozenUnaryRefiner):
    """A trainable SPN head on top of a frozen mmseg segmentor.

    The frozen unary, ``unary_probs``, ``predict`` and the other shared
    parts are :class:`FrozenUnaryRefiner`'s.

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
        loss_affinity (dict, optional): PSA's :class:`AffinityLoss` on the
            gates read as pair affinities (:func:`gate_affinity`), with the
            labels at the gate size (nearest, as for L_s): both pixels of a
            gate's pair of one class -> 1, of two classes -> 0, a pair
            touching an unknown pixel or the border ignored. None (default):
            no such loss.
        boundary_perturbation (dict, optional): Training only: the unary
            probabilities g_t learns from get their objects grown or shrunk
            (:func:`perturb_boundaries` with these keyword arguments, e.g.
            ``dict(max_radius=4, prob=0.5)``), so that they disagree with
            the labels at boundaries (issue #22). None (default): alpha_u
            as it is.
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
                 loss_affinity: Optional[dict] = None,
                 boundary_perturbation: Optional[dict] = None,
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 restrict_to_tags: bool = True,
                 ignore_index: int = 255,
                 init_cfg: Optional[dict] = None):
        super().__init__(unary, unary_checkpoint=unary_checkpoint,
                         data_preprocessor=data_preprocessor,
                         restrict_to_tags=restrict_to_tags,
                         ignore_index=ignore_index, init_cfg=init_cfg)
        self.head = MODELS.build(head)
        self.loss_decode = MODELS.build(loss_decode)
        self.loss_smooth = (MODELS.build(loss_smooth)
                            if loss_smooth is not None else None)
        self.loss_affinity = (MODELS.build(loss_affinity)
                              if loss_affinity is not None else None)
        self.boundary_perturbation = boundary_perturbation

    def refine(self, inputs: Tensor,
               unary_probs: Tensor) -> Tuple[Tensor, Tensor]:
        """Refined logits (N, K, H, W) and raw gates (N, 12 G, h, w)."""
        return self.head(inputs, unary_probs)

    def apply_affinity(self, inputs: Tensor, a: Tensor,
                       data_samples: Optional[List[SegDataSample]] = None
                       ) -> Tensor:
        """G a for any class map a (N, K', H, W) with the image's gates.

        G is the head's lifted SPN propagation (see
        :mod:`~iaffinity_plugins.models.heads.spn_head`). With the paper's
        head (``propagation_channels=None, output='normalized'``),
        :meth:`refine` returns exactly ``log(G alpha_u)`` renormalised over
        classes, so the E-step, the refined labels and the energy J use one
        operator; with the projected head, :meth:`refine` applies G to
        projected probabilities instead. With the head's
        ``confidence_gates`` G also weighs the gates by alpha_u, recomputed
        here from ``data_samples`` (the image tags) as the E-step does
        (:meth:`loss` weighs them by the alpha_u it trains on, perturbed
        where ``boundary_perturbation`` is set); without it they are not
        needed.
        """
        unary_probs = None
        if self.head.confidence_gates:
            if data_samples is None:
                raise ValueError(
                    'SPNRefiner.apply_affinity: the head weighs its gates '
                    'by the unary confidence (confidence_gates=True): give '
                    'data_samples to compute alpha_u')
            unary_probs = self.unary_probs(inputs, data_samples)
        return self.head.apply_affinity(a, self.head.gates(inputs),
                                        unary_probs)

    def extract_feat(self, inputs: Tensor) -> Tensor:
        """Gates (N, 12 G, h, w): the features the pairwise net learns."""
        return self.head.gates(inputs)

    def loss(self, inputs: Tensor,
             data_samples: List[SegDataSample]) -> Dict[str, Tensor]:
        """CE on ``gt_sem_seg`` (+ L_s on the gates with ``gt_superpixels``,
        + the affinity loss on the gates against ``gt_sem_seg``); with
        ``boundary_perturbation`` g_t refines a perturbed alpha_u."""
        unary_probs = self.unary_probs(inputs, data_samples)
        if self.boundary_perturbation is not None:
            unary_probs = perturb_boundaries(unary_probs,
                                             **self.boundary_perturbation)
        logits, gates = self.refine(inputs, unary_probs)
        labels = self._labels(data_samples)
        losses = {
            self.loss_decode.loss_name:
            self.loss_decode(
                logits, labels, ignore_index=self.ignore_index)
        }
        if self.loss_smooth is not None:
            losses[self.loss_smooth.loss_name] = self.loss_smooth(
                gates, self._superpixels(data_samples))
        if self.loss_affinity is not None:
            losses[self.loss_affinity.loss_name] = self.gate_affinity_loss(
                gates, labels)
        return losses

    def gate_affinity_loss(self, gates: Tensor, labels: Tensor) -> Tensor:
        """``loss_affinity`` on the gates' pairs.

        Why: the CE reaches a gate only through dL/dh (h_prev - x), ~0
        while the propagation is near the identity and the unary already
        agrees with the labels, so the gates barely train (issue #22); this
        loss reaches them whatever the propagation does.

        Args:
            gates (Tensor): (N, 12 G, h, w) raw gates.
            labels (Tensor): (N, H, W) integer labels, ``ignore_index`` =
                unknown.

        Returns:
            Tensor: Scalar; the pairs of every gate group count alike.
        """
        affinity = gate_affinity(gates)  # (N G, 12, h, w)
        groups = affinity.shape[0] // gates.shape[0]
        labels = resize_nearest_ids(labels, gates.shape[2:])
        return self.loss_affinity(affinity,
                                  labels.repeat_interleave(groups, 0),
                                  GATE_OFFSETS,
                                  ignore_index=self.ignore_index)

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
