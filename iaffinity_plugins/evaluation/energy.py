"""The energy J(alpha) = <alpha, alpha - G alpha> of a label map (eq. (1)-(3)).

With G = I - L the learned affinity transformation (the pairwise network's
propagation), J = alpha^T L alpha is low when pixels that the affinity links
carry the same label. The paper uses it to check that mining confident
regions lowers the energy (Table 7).

The learned G does not preserve constants (the scan's zero boundary, the
(1 - sum g) injection, unknown pixels that carry no label), so J of the raw
G is positive for a constant map and not comparable between steps. J is
therefore taken with G restricted to the labelled pixels and normalised to
keep constants::

    G' a = (G a) / (G m)          per class channel, m = 1 on labelled pixels

    J = sum_{i labelled} <a_i, a_i - (G' a)_i> / (number of labelled pixels)

For a one-hot ``a`` this is 0 for a constant map, lies in [0, 1] whenever
G's entries are non-negative (each row of G' then sums to 1, and
(G' a)_i <= 1), and is the fraction of a labelled pixel's affinity mass that
reaches labelled pixels of other classes. Negative gates can make it
negative.

Shape shorthand: N batch, K classes (background included), H x W image.
"""
import os.path as osp
from typing import List, Optional

import torch
from mmseg.structures import SegDataSample
from torch import Tensor

from ..labels.label_io import read_label
from ..labels.scores import resize_short_edge
from ..models.losses.superpixel_smoothness_loss import resize_nearest_ids

IGNORE_INDEX = 255
# |G m| below this counts as "reaches no labelled pixel".
REACH_EPS = 1e-6


def one_hot_labels(labels: Tensor, num_classes: int) -> Tensor:
    """One-hot class maps of a label map; unknown pixels are all-zero.

    Args:
        labels (Tensor): (N, H, W) integer labels in [0, K) or 255.
        num_classes (int): K.

    Returns:
        Tensor: (N, K, H, W) float32.
    """
    if labels.dim() != 3 or labels.dtype.is_floating_point:
        raise ValueError('labels must be an integer (N, H, W) map, got '
                         f'{labels.dtype} {tuple(labels.shape)}')
    labels = labels.long()
    known = labels != IGNORE_INDEX
    bad = known & ((labels < 0) | (labels >= num_classes))
    if bad.any():
        raise ValueError(f'labels hold values outside [0, {num_classes}) '
                         f'and {IGNORE_INDEX}: {labels[bad].unique().tolist()}')
    # Unknown pixels go to an extra class that is then dropped, so they carry
    # no label mass at all (the zero vector) instead of a fake class.
    onehot = torch.nn.functional.one_hot(
        torch.where(known, labels, num_classes), num_classes + 1)
    return onehot[..., :num_classes].permute(0, 3, 1, 2).float()


@torch.no_grad()
def propagation_energy(refiner, inputs: Tensor, labels: Tensor,
                       num_classes: int,
                       data_samples: Optional[List[SegDataSample]] = None
                       ) -> Tensor:
    """Per-image energy J = <a, a - G' a> / (number of labelled pixels).

    ``a`` is the one-hot label map (unknown pixels = zero vector); G' is G
    restricted to the labelled pixels and normalised to keep constants (see
    the module docstring). ``G a`` and ``G m`` come from
    ``refiner.apply_affinity``, so G is never formed as an (HW x HW) matrix.
    Dividing by the labelled pixel count makes images of different sizes and
    label coverage comparable; an image without labelled pixels gets J = 0.

    Args:
        refiner: a model with ``apply_affinity(inputs, a, data_samples)
            -> (N, K, H, W)``, e.g. a
            :class:`~iaffinity_plugins.models.segmentors.SPNRefiner` or
            :class:`~iaffinity_plugins.models.segmentors.AffinityRefiner`.
        inputs (Tensor): (N, 3, H, W) normalised images.
        labels (Tensor): (N, H, W) integer labels, 255 = unknown.
        num_classes (int): K.
        data_samples (list[SegDataSample], optional): the images' samples
            (tags), for a G that depends on the unary probabilities (an
            ``SPNHead`` with ``confidence_gates``).

    Returns:
        Tensor: (N,) float32 energies.
    """
    a = one_hot_labels(labels, num_classes).to(inputs.device)
    if a.shape[-2:] != inputs.shape[-2:]:
        raise ValueError(f'labels {tuple(labels.shape)} and inputs '
                         f'{tuple(inputs.shape)} differ in size')
    known = a.sum(1, keepdim=True).expand_as(a).contiguous()
    propagated = refiner.apply_affinity(inputs, a, data_samples)
    # Where a labelled pixel reaches no labelled mass at all (G m ~ 0), G'
    # is undefined; such a pixel keeps its own label (no energy).
    reach = refiner.apply_affinity(inputs, known, data_samples)
    defined = reach.abs() > REACH_EPS
    normalised = torch.where(defined, propagated / torch.where(
        defined, reach, torch.ones_like(reach)), a)
    energy = (a * (a - normalised)).sum((1, 2, 3))
    labelled = known[:, 0].sum((1, 2))
    return energy / labelled.clamp_min(1)


@torch.no_grad()
def mean_energy(refiner, dataset, label_dir: str, samples: int,
                short_edge: Optional[int] = None) -> Optional[float]:
    """Mean :func:`propagation_energy` of a label folder over a fixed image
    sample (Table 7): the first ``samples`` images by image id.

    Args:
        refiner: A model with ``apply_affinity`` and a
            ``data_preprocessor`` (see :func:`propagation_energy`).
        dataset (BaseSegDataset): The images (an inference pipeline).
        label_dir (str): One ``<img_id>.png`` (H, W) per image.
        samples (int): How many images.
        short_edge (int, optional): G is the one the E-step applied: the
            image read at this short edge
            (:func:`~iaffinity_plugins.labels.scores.resize_short_edge`),
            the labels resized to it by nearest neighbour. None: the
            image's own size.

    Returns:
        float or None: The mean J; None for no image.
    """
    num_classes = len(dataset.metainfo['classes'])
    order = sorted(range(len(dataset)),
                   key=lambda i: dataset.get_data_info(i)['img_id'])
    energies = []
    for index in order[:samples]:
        item = dataset.prepare_data(index)
        img_id = dataset.get_data_info(index)['img_id']
        batch = refiner.data_preprocessor(
            dict(inputs=[item['inputs']],
                 data_samples=[item['data_samples']]), False)
        labels = torch.from_numpy(
            read_label(osp.join(label_dir, f'{img_id}.png'))).long()[None]
        inputs = resize_short_edge(batch['inputs'], short_edge)
        labels = resize_nearest_ids(labels, inputs.shape[2:])
        energies.append(propagation_energy(
            refiner, inputs, labels, num_classes, batch['data_samples']))
    return float(torch.cat(energies).mean()) if energies else None
