"""Region confidence network (paper Sec. 3.3, eq. 9).

A Fast R-CNN-like classifier whose "RoIs" are superpixels: backbone features,
masked average pooling of the feature map inside each region, an MLP over the
K classes. Trained with cross-entropy on the regions that the 80 % rule
labels in the current labels Y_t; at mining time its probabilities decide
which proposed regions are kept.

Shapes: N batch, C feature channels, K classes including background,
H x W input size, h x w feature size, R_i regions of image i.
"""
from typing import Dict, List, Optional, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from torch import Tensor, nn

from iaffinity_plugins.labels.mining import IGNORE_INDEX, region_majority
from iaffinity_plugins.registry import MODELS


def masked_average_pool(features: Tensor, superpixels: Tensor,
                        region_ids: List[Tensor]) -> List[Tensor]:
    """Mean feature inside each requested region, all regions at once.

    The feature map is treated as nearest-upsampled to image size (exactly
    ``F.interpolate(features, (H, W), mode='nearest')``) and averaged over
    each region's pixels, without materialising the (N, C, H, W) upsampled
    map: every pixel points at one feature cell, so a region's mean is a
    weighted sum of cells with weights = pixel counts per (region, cell)
    pair. The pairs are counted with one ``torch.unique`` over the batch and
    summed with one ``index_add_``; memory is O(pairs x C) with pairs <= N H W
    (about the number of cells plus region boundaries). No loop per region.

    Args:
        features (Tensor): (N, C, h, w) feature map.
        superpixels (Tensor): (N, H, W) int64 region ids; negative = ignore
            (batch padding).
        region_ids (list[Tensor]): N tensors of shape (R_i,), ids to pool.

    Returns:
        list[Tensor]: N tensors of shape (R_i, C).
    """
    num, channels, h, w = features.shape
    height, width = superpixels.shape[-2:]
    device = features.device
    # Cell index of every pixel, by the same rounding as nearest upsampling.
    cells = torch.arange(h * w, device=device, dtype=torch.float32)
    cells = F.interpolate(cells.view(1, 1, h, w), size=(height, width),
                          mode='nearest').long().view(height, width)
    cells = cells + torch.arange(num, device=device).view(num, 1, 1) * h * w
    # Region ids of all images in one global index: image i's regions start
    # after those of images 0 .. i-1.
    counts = superpixels.flatten(1).max(1).values.clamp(min=-1) + 1
    offsets = torch.cumsum(counts, 0) - counts
    valid = superpixels >= 0
    regions = (superpixels + offsets.view(num, 1, 1))[valid]
    cells = cells.expand(num, height, width)[valid]
    total_regions = int(counts.sum())
    pairs, pair_pixels = torch.unique(regions * (num * h * w) + cells,
                                      return_counts=True)
    pair_region, pair_cell = pairs // (num * h * w), pairs % (num * h * w)
    flat = features.permute(0, 2, 3, 1).reshape(num * h * w, channels)
    sums = flat.new_zeros(total_regions, channels).index_add_(
        0, pair_region, flat[pair_cell] * pair_pixels[:, None].to(flat.dtype))
    sizes = torch.bincount(regions, minlength=total_regions)
    pooled = []
    for i, ids in enumerate(region_ids):
        ids = ids.to(device).long()
        if ids.numel() and (ids.min() < 0 or ids.max() >= counts[i]
                            or (sizes[ids + offsets[i]] == 0).any()):
            raise ValueError(f'image {i}: requested region ids that have no '
                             'pixel in its superpixel map')
        global_ids = ids + offsets[i]
        pooled.append(sums[global_ids] / sizes[global_ids, None])
    return pooled


@MODELS.register_module()
class RegionClassifier(BaseModel):
    """Region confidence classifier with masked average pooling.

    Args:
        backbone (dict): Any mmseg backbone config (ImageNet weights through
            its ``init_cfg`` where available).
        num_classes (int): K, classes including background.
        in_channels (int): Channels of the backbone output used.
        in_index (int): Which backbone output to pool.
        hidden_channels (int): Width of the MLP's hidden layer.
        dropout (float): Dropout before the last layer.
        ratio (float): Majority ratio that labels the training regions.
        data_preprocessor (dict | nn.Module, optional): A SegDataPreProcessor.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 backbone: dict,
                 num_classes: int,
                 in_channels: int,
                 in_index: int = -1,
                 hidden_channels: int = 256,
                 dropout: float = 0.5,
                 ratio: float = 0.8,
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 init_cfg: Optional[dict] = None) -> None:
        # Built from mmseg's registry so 'SegDataPreProcessor' resolves
        # without a default scope.
        if isinstance(data_preprocessor, dict):
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.in_index = in_index
        self.ratio = ratio
        self.num_classes = num_classes
        self.classifier = nn.Sequential(
            nn.Linear(in_channels, hidden_channels), nn.ReLU(inplace=True),
            nn.Dropout(dropout), nn.Linear(hidden_channels, num_classes))

    def region_logits(self, inputs: Tensor, superpixels: Tensor,
                      region_ids: List[Tensor]) -> List[Tensor]:
        """Class logits of the requested regions.

        Args:
            inputs (Tensor): (N, 3, H', W') normalised images, at their
                own size or resized (:func:`masked_average_pool` maps the
                superpixels' pixels proportionally onto the feature cells).
            superpixels (Tensor): (N, H, W) int64 ids, negative = ignore.
            region_ids (list[Tensor]): N tensors (R_i,) of ids to classify.

        Returns:
            list[Tensor]: N tensors of shape (R_i, K).
        """
        features = self.backbone(inputs)[self.in_index]
        pooled = masked_average_pool(features, superpixels, region_ids)
        # One MLP call over the regions of the whole batch.
        logits = self.classifier(torch.cat(pooled))
        return list(logits.split([len(ids) for ids in region_ids]))

    def forward(self, inputs: Tensor, data_samples: Optional[list] = None,
                mode: str = 'tensor'):
        """mmengine entry point.

        Args:
            inputs (Tensor): (N, 3, H, W) normalised images.
            data_samples (list[SegDataSample]): With ``gt_superpixels``
                (1, H_i, W_i) and, for ``'loss'``, ``gt_sem_seg`` (Y_t).
            mode (str): ``'loss'`` -> ``{'loss_region': CE}``;
                ``'tensor'`` -> list of (R_i, K) logits of every region
                present in image i (ascending id); ``'predict'`` -> the data
                samples with ``region_ids`` (R_i,) and ``region_probs``
                (R_i, K) set.
        """
        superpixels = self._batch_superpixels(data_samples, inputs.shape[-2:])
        if mode == 'loss':
            return self.loss(inputs, superpixels, data_samples)
        region_ids = [sp[sp >= 0].unique() for sp in superpixels]
        logits = self.region_logits(inputs, superpixels, region_ids)
        if mode == 'tensor':
            return logits
        if mode == 'predict':
            for sample, ids, region_logits in zip(data_samples, region_ids,
                                                  logits):
                sample.set_field(ids, 'region_ids')
                sample.set_field(region_logits.softmax(1), 'region_probs')
            return data_samples
        raise ValueError(f'invalid mode {mode!r}; use loss, predict, tensor')

    def loss(self, inputs: Tensor, superpixels: Tensor,
             data_samples: list) -> Dict[str, Tensor]:
        """Cross-entropy over the regions the 80 % rule labels in Y_t (eq. 9).

        Args:
            inputs (Tensor): (N, 3, H, W) normalised images.
            superpixels (Tensor): (N, H, W) int64 ids, negative = ignore.
            data_samples (list[SegDataSample]): With ``gt_sem_seg``.
        """
        region_ids, targets = [], []
        for sample, sp in zip(data_samples, superpixels):
            labels = sample.gt_sem_seg.data[0]
            region_class = region_majority(labels, sp, self.ratio)
            ids = (region_class != IGNORE_INDEX).nonzero()[:, 0]
            region_ids.append(ids)
            targets.append(region_class[ids])
        targets = torch.cat(targets)
        if targets.numel() == 0:
            # A crop can hold no labelled region. The loss must still be a
            # graph node over every parameter, so that the optimizer wrapper
            # can call backward() (and DDP sees all parameters used).
            return dict(loss_region=sum(
                param.sum() for param in self.parameters()
                if param.requires_grad) * 0.0)
        logits = torch.cat(self.region_logits(inputs, superpixels,
                                              region_ids))
        return dict(loss_region=F.cross_entropy(logits, targets))

    @staticmethod
    def _batch_superpixels(data_samples: Optional[list],
                           size: torch.Size) -> Tensor:
        """(N, H, W) int64 superpixels, padded with -1 to the input size.

        The data preprocessor pads images and ``gt_sem_seg`` but not
        ``gt_superpixels``; -1 marks the padding as no region.
        """
        if not data_samples or 'gt_superpixels' not in data_samples[0]:
            raise KeyError('RegionClassifier needs data_sample.gt_superpixels '
                           '(add LoadSuperpixels to the pipeline)')
        padded = []
        for sample in data_samples:
            sp = sample.gt_superpixels.data[0].long()
            padded.append(F.pad(sp, (0, size[1] - sp.shape[1],
                                     0, size[0] - sp.shape[0]), value=-1))
        return torch.stack(padded)
