"""The pairwise network's head: a guidance net predicting SPN gates from the
image, and the 4-direction propagation refining the unary probabilities.

Shape shorthand: N batch, K classes (background included), H x W input,
h x w propagation size = ceil(H / s) x ceil(W / s) for the propagation
stride s, P propagation channels, G gate groups.

The affinity G of this head, at the propagation resolution, is the
4-direction SPN scan (:func:`spn_propagate`). It is lifted to the input
resolution as a residual, ``G a = a + up(prop(down(a)) - down(a))``, so zero
gates give exactly the identity at any stride. ``apply_affinity`` applies G
to any class map (the E-step operator and the one of the energy J). With
``confidence_gates`` (NLSPN's ``conf_prop``) G also depends on alpha_u: each
gate is weighted by the unary confidence of the neighbour it reads
(:meth:`SPNHead.gate_confidence`), the same in both methods.

``forward`` has two designs, chosen by ``propagation_channels``/``output``:

* paper (``propagation_channels=None, output='normalized'``): the refined
  map is alpha_p = G alpha_u itself (Sec. 3.1, 3.2.2), renormalised over the
  K classes, and the loss is CE on log alpha_p. G only moves probability
  mass along image-driven paths, so it cannot memorise the (noisy) labels it
  is trained on, and ``apply_affinity(alpha_u)`` is exactly what ``forward``
  refines.
* projected (default ``propagation_channels=16, output='residual'``): the
  unary probabilities are projected to P channels (1x1 convs in and out)
  and the change of the propagation is added to log alpha_u. The free
  K -> P -> K class mixing makes this a small segmentation net of its own:
  trained on the noisy labels Y_t it reproduces them (on the synthetic demo
  it refined *below* the unary net), and its output is not G alpha_u, so
  ``apply_affinity`` (gates averaged over groups) is only related to it.
"""
import math
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import Tensor

from iaffinity_plugins.registry import MODELS
from ..ops.spn_scan import NUM_GATE_MAPS, spn_propagate

# The gate conv starts small, so the untrained propagation is near the
# identity (gates near 0). With the unary already agreeing with the labels,
# such gates get almost no gradient from the CE (issue #22): a larger std,
# e.g. ``--cfg-options train_cfg.pairwise.model.head.init_cfg.std=0.1``, or a
# positive ``init_cfg.bias`` starts the propagation. The scan keeps
# sum |g| <= 1 whatever the init (``normalize_gates``).
GATE_INIT = dict(type='Normal', std=0.01, override=dict(name='conv_gates'))


class ConvEncoder(nn.ModuleList):
    """The default guidance encoder, trained from random init: level i is a
    conv-bn-relu at stride 2^i (level 0 at full size) with ``channels[i]``
    channels.

    Args:
        channels (Sequence[int]): channels per level.
        norm_cfg (dict): norm layer of the conv-bn-relu blocks.
    """

    def __init__(self, channels: Sequence[int], norm_cfg: dict):
        super().__init__(
            ConvModule(cin, cout, 3, stride=1 if i == 0 else 2, padding=1,
                       norm_cfg=norm_cfg)
            for i, (cin, cout) in enumerate(zip((3, *channels), channels)))

    def forward(self, image: Tensor) -> Tuple[Tensor, ...]:
        """(N, 3, H, W) -> one (N, channels[i], H / 2^i, W / 2^i) map per
        level."""
        levels = []
        x = image
        for layer in self:
            x = layer(x)
            levels.append(x)
        return tuple(levels)


def probe_levels(encoder: nn.Module,
                 size: int = 64) -> Tuple[List[int], List[int]]:
    """Channels and strides of an encoder's outputs, from one forward pass
    on a (1, 3, size, size) zero image in eval mode (BN statistics are not
    touched)."""
    was_training = encoder.training
    encoder.eval()
    with torch.no_grad():
        outs = encoder(torch.zeros(1, 3, size, size))
    encoder.train(was_training)
    return ([out.shape[1] for out in outs],
            [size // out.shape[2] for out in outs])


class GuidanceNet(BaseModule):
    """U-Net style guidance net: an encoder and a decoder that climbs back,
    with skip connections, to the level of the propagation stride.

    Args:
        encoder (nn.Module): image (N, 3, H, W) -> tuple of L maps, level i
            of ``channels[i]`` channels, strides increasing with i: the
            default :class:`ConvEncoder` or a (pretrained) backbone.
        channels (Sequence[int]): channels of the L encoder levels.
        out_level (int): level of the output.
        norm_cfg (dict): norm layer of the decoder's conv-bn-relu blocks.
    """

    def __init__(self, encoder: nn.Module, channels: Sequence[int],
                 out_level: int, norm_cfg: dict):
        # A BaseModule, so that init_weights reaches a pretrained encoder.
        super().__init__()
        self.encoder = encoder
        # decoder[i] lifts level i + 1 to level i (input: upsampled deeper
        # features concatenated with the skip of level i)
        self.decoder = nn.ModuleList(
            ConvModule(channels[i + 1] + channels[i], channels[i], 3,
                       padding=1, norm_cfg=norm_cfg)
            for i in range(out_level, len(channels) - 1))
        self.out_level = out_level

    def forward(self, image: Tensor) -> Tensor:
        """(N, 3, H, W) -> (N, channels[out_level], h_l, w_l)."""
        skips = self.encoder(image)
        x = skips[-1]
        for i in reversed(range(len(self.decoder))):
            skip = skips[self.out_level + i]
            x = F.interpolate(x, size=skip.shape[2:], mode='bilinear',
                              align_corners=False)
            x = self.decoder[i](torch.cat([x, skip], 1))
        return x


def build_guidance(channels: Optional[Sequence[int]],
                   encoder: Optional[dict], propagation_stride: int,
                   norm_cfg: dict) -> Tuple[GuidanceNet, int]:
    """The guidance net of :class:`SPNHead` and its output channels.

    Without ``encoder``: a :class:`ConvEncoder` of ``channels``. With it:
    the built backbone, whose output levels (probed once) must include
    stride ``propagation_stride``; ``channels`` must then be None.
    """
    if encoder is None:
        if channels is None:
            raise ValueError('SPNHead: give channels (the default encoder) '
                             'or an encoder config')
        out_level = int(math.log2(propagation_stride))
        if 2**out_level != propagation_stride or out_level >= len(channels):
            raise ValueError(
                'propagation_stride must be a power of two below '
                f'2 ** len(channels) = {2**len(channels)}, '
                f'got {propagation_stride}')
        net = ConvEncoder(channels, norm_cfg)
    else:
        if channels is not None:
            raise ValueError('SPNHead: with an encoder the guidance widths '
                             "are the encoder's channels: set channels=None")
        net = MODELS.build(encoder)
        channels, strides = probe_levels(net)
        if propagation_stride not in strides:
            raise ValueError(
                f'SPNHead: propagation_stride {propagation_stride} must be '
                f'a stride of the encoder outputs {strides}')
        out_level = strides.index(propagation_stride)
    guidance = GuidanceNet(net, channels, out_level, norm_cfg)
    return guidance, channels[out_level]


@MODELS.register_module()
class SPNHead(BaseModule):
    """Guidance net + SPN propagation refining K unary probabilities.

    The scan runs at ``propagation_stride`` (the unary probabilities are
    area-downsampled, the change the propagation makes is upsampled
    bilinearly): a Python-level loop over the scan axis costs per step, so
    stride 2 or 4 keeps CPU training affordable at little loss, the unary
    already being smooth at that scale.

    Args:
        num_classes (int): K.
        propagation_channels (int, optional): P, channels the propagation
            runs on, reached by 1x1 projections K -> P -> K; None propagates
            the K class probabilities themselves (the paper's
            alpha_p = G alpha_u, see the module docstring).
        num_gate_groups (int): G, gate maps per direction and neighbour;
            P (K when ``propagation_channels`` is None) must be divisible
            by G.
        channels (Sequence[int], optional): channels per level of the
            default random-init guidance encoder (:class:`ConvEncoder`);
            None with ``encoder``.
        encoder (dict, optional): backbone config whose outputs replace
            that encoder, e.g. the first levels of an ImageNet network,
            ``dict(type='EfficientNetLite', arch='lite0', out_indices=(0, 1,
            2), init_cfg=dict(type='Pretrained',
            checkpoint='efficientnet-lite0'))`` (strides 2, 4, 8); the
            decoder climbs its levels back to ``propagation_stride``.
        propagation_stride (int): power of two, < 2 ** len(channels); with
            ``encoder`` one of its output strides.
        merge (str): direction merge of :func:`spn_propagate`: SPN's
            'max' (default) or 'mean' (the configs' choice).
        output (str): 'residual': logits = log alpha_u + up(change), the
            head's original design; 'normalized': logits = log of
            ``clamp(alpha_u + up(change), eps)`` renormalised over classes,
            i.e. log(G alpha_u) for ``propagation_channels=None`` (SPN gates
            may be negative, so G alpha_u may leave the simplex a little).
        norm_cfg (dict): guidance net norm layer.
        eps (float): floor of the probabilities before the log.
        confidence_gates (bool): NLSPN's ``conf_prop``: weight each gate by
            the confidence c = max_k down(alpha_u)_k (area-downsampled to
            the propagation size) of the neighbour it reads, after the SPN
            normalisation, so sum |g| <= 1 still holds (``confidence`` of
            :func:`spn_propagate`): confident unary pixels propagate into
            unconfident ones and not the reverse. :meth:`apply_affinity`
            then needs ``unary_probs`` too. Default False: the gates as
            predicted.
        init_cfg (dict, optional): mmengine init config, by default
            :data:`GATE_INIT`. A dict without ``type``, such as the
            ``dict(std=0.1)`` that ``--cfg-options ...head.init_cfg.std=0.1``
            creates, only overrides keys of :data:`GATE_INIT`.
    """

    def __init__(self,
                 num_classes: int,
                 propagation_channels: Optional[int] = 16,
                 num_gate_groups: int = 1,
                 channels: Optional[Sequence[int]] = (16, 32, 64),
                 encoder: Optional[dict] = None,
                 propagation_stride: int = 2,
                 merge: str = 'max',
                 output: str = 'residual',
                 norm_cfg: dict = dict(type='BN'),
                 eps: float = 1e-6,
                 confidence_gates: bool = False,
                 init_cfg: Optional[dict] = GATE_INIT):
        if isinstance(init_cfg, dict) and 'type' not in init_cfg:
            init_cfg = {**GATE_INIT, **init_cfg}
        super().__init__(init_cfg)
        scan_channels = (num_classes if propagation_channels is None else
                         propagation_channels)
        if scan_channels % num_gate_groups:
            raise ValueError(f'propagation channels ({scan_channels}) '
                             f'must be divisible by num_gate_groups '
                             f'({num_gate_groups})')
        if output not in ('residual', 'normalized'):
            raise ValueError("SPNHead: output must be 'residual' or "
                             f"'normalized', got {output!r}")
        self.num_classes = num_classes
        self.propagation_channels = propagation_channels
        self.propagation_stride = propagation_stride
        self.merge = merge
        self.output = output
        self.eps = eps
        self.confidence_gates = confidence_gates
        self.guidance, guidance_channels = build_guidance(
            channels, encoder, propagation_stride, norm_cfg)
        self.conv_gates = nn.Conv2d(guidance_channels,
                                    NUM_GATE_MAPS * num_gate_groups, 1)
        if propagation_channels is None:
            self.conv_in = self.conv_out = None
        else:
            self.conv_in = nn.Conv2d(num_classes, propagation_channels, 1)
            # No bias on the way out: with G = I the change is exactly zero,
            # so the refined output equals the unary prediction.
            self.conv_out = nn.Conv2d(
                propagation_channels, num_classes, 1, bias=False)

    def _propagation_size(self, size: Sequence[int]) -> Tuple[int, int]:
        return tuple(math.ceil(s / self.propagation_stride) for s in size)

    def gates(self, image: Tensor) -> Tensor:
        """Raw gates (N, 12 * G, h, w) from the image (N, 3, H, W)."""
        gates = self.conv_gates(self.guidance(image))
        size = self._propagation_size(image.shape[2:])
        if gates.shape[2:] != size:  # odd sizes: the conv grid is off by one
            gates = F.interpolate(gates, size=size, mode='bilinear',
                                  align_corners=False)
        return gates

    def gate_confidence(self, unary_probs: Optional[Tensor],
                        size: Sequence[int]) -> Optional[Tensor]:
        """The confidence weighting the gates, None without
        ``confidence_gates``.

        Args:
            unary_probs (Tensor, optional): (N, K, H, W) alpha_u; needed
                with ``confidence_gates``.
            size (Sequence[int]): the propagation size (h, w).

        Returns:
            Tensor or None: (N, 1, h, w), the max class probability of the
            area-downsampled alpha_u.
        """
        if not self.confidence_gates:
            return None
        if unary_probs is None:
            raise ValueError('SPNHead: confidence_gates=True weights the '
                             'gates by the unary confidence: give '
                             'unary_probs')
        low = F.interpolate(unary_probs, size=tuple(size), mode='area')
        return low.amax(1, keepdim=True)

    def _propagation_change(self, x: Tensor, gates: Tensor,
                            confidence: Optional[Tensor]) -> Tensor:
        """prop(down(x)) - down(x) at (h, w); x (N, C, H, W), confidence
        (N, 1, h, w) or None (:meth:`gate_confidence`)."""
        low = F.interpolate(x, size=gates.shape[2:], mode='area')
        return spn_propagate(low, gates, self.merge, confidence) - low

    def _lift(self, change: Tensor, size: Sequence[int]) -> Tensor:
        """Upsample a (N, C, h, w) change to (N, C, H, W)."""
        return F.interpolate(change, size=tuple(size), mode='bilinear',
                             align_corners=False)

    def forward(self, image: Tensor,
                unary_probs: Tensor) -> Tuple[Tensor, Tensor]:
        """Refine unary probabilities.

        Args:
            image (Tensor): (N, 3, H, W) normalised image.
            unary_probs (Tensor): (N, K, H, W) unary probabilities.

        Returns:
            tuple[Tensor]: refined logits (N, K, H, W) and raw gates
            (N, 12 * G, h, w).
        """
        if unary_probs.shape[1] != self.num_classes or \
                unary_probs.shape[2:] != image.shape[2:]:
            raise ValueError(
                f'SPNHead: unary_probs {tuple(unary_probs.shape)} must be '
                f'(N, {self.num_classes}, H, W) for image '
                f'{tuple(image.shape)}')
        gates = self.gates(image)
        confidence = self.gate_confidence(unary_probs, gates.shape[2:])
        if self.conv_in is None:
            # G alpha_u itself: a (K, H, W) map through the affinity only
            change = self._propagation_change(unary_probs, gates, confidence)
        else:
            # conv_in/conv_out are 1x1 and linear, so they commute with the
            # area down- and bilinear up-sampling of the lifted G.
            change = self.conv_out(self._propagation_change(
                self.conv_in(unary_probs), gates, confidence))
        change = self._lift(change, image.shape[2:])
        if self.output == 'residual':
            # Residual on the unary log-probabilities: an untrained head
            # (gates near zero) starts at the unary prediction.
            logits = unary_probs.clamp_min(self.eps).log() + change
        else:
            # alpha_p = G alpha_u renormalised over classes; SPN gates may be
            # negative, so G alpha_u may leave the simplex slightly.
            refined = (unary_probs + change).clamp_min(self.eps)
            logits = (refined / refined.sum(1, keepdim=True)).log()
        return logits, gates

    def apply_affinity(self, a: Tensor, gates: Tensor,
                       unary_probs: Optional[Tensor] = None) -> Tensor:
        """G a for a class map a (N, K', H, W) and raw gates of this head.

        Args:
            a (Tensor): (N, K', H, W) any class map.
            gates (Tensor): (N, 12 * G, h, w) raw gates (:meth:`gates`).
            unary_probs (Tensor, optional): (N, K, H, W) the alpha_u that
                :meth:`forward` refines with these gates; needed (only) with
                ``confidence_gates``, whose gate weights it gives.

        Returns:
            Tensor: (N, K', H, W), ``a + up(prop(down(a)) - down(a))``. With
            ``propagation_channels=None`` and K' = K the gates are used per
            group, exactly the G of :meth:`forward` (which then returns
            log of this map for ``a = alpha_u``, renormalised); otherwise
            (any K') the raw gates are averaged over groups (identical when
            G = 1).
        """
        n, _, height, width = gates.shape
        confidence = self.gate_confidence(unary_probs, gates.shape[2:])
        if not (self.conv_in is None and a.shape[1] == self.num_classes):
            gates = gates.view(n, NUM_GATE_MAPS, -1, height, width).mean(2)
        change = self._propagation_change(a, gates, confidence)
        return a + self._lift(change, a.shape[2:])
