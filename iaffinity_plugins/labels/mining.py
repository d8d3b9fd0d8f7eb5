"""Mining confident regions (paper Sec. 3.3, Fig. 4).

1. Proposal: a superpixel takes class c when more than 80 % of its pixels are
   c in the unary output, else it is unknown (:func:`superpixel_majority`,
   the ``'majority'`` miner). These regions train the region classifier.
2. Confidence: the region classifier scores regions, with its probabilities
   restricted to background and the image's tags
   (:func:`region_probabilities`), and a region is kept when its
   probability is > 0.7. :data:`MINING_MODES`:

   - ``'relabel'`` (the paper: "we can re-predict each superpixel region",
     so "some regions are corrected"): EVERY superpixel is scored and keeps
     the classifier's argmax class when confident, whatever its proposed
     class (:func:`relabel_regions`);
   - ``'confirm'``: only the proposed regions are scored, and a region keeps
     its proposed class when the classifier confirms it
     (:func:`confirm_regions`);
   - ``'majority'``: the proposal alone;
   - ``'none'`` (the "no mining" ablation): the labels copied.

:func:`mine_labels` runs them over a data set and writes the next label
folder. Shapes: H x W image size, R regions (superpixels), K classes
including background (index 0). Labels are uint8 with 255 = unknown.
"""
import os
import os.path as osp
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from iaffinity_plugins.labels.label_io import (IGNORE_INDEX,
                                               check_label_values, read_label,
                                               write_label)
from iaffinity_plugins.labels.kept_objects import keep_previous_objects_from
from iaffinity_plugins.labels.label_writer import load_images, pending_images
from iaffinity_plugins.labels.lost_tags import restore_lost_tags_from
from iaffinity_plugins.labels.scores import (allowed_classes,
                                             resize_short_edge)
from iaffinity_plugins.labels.superpixels import SuperpixelCache, item_rgb
from iaffinity_plugins.plugins import hookimpl

MINING_MODES = ('relabel', 'confirm', 'majority', 'none')
# The modes that score regions with the region classifier.
CLASSIFIER_MODES = ('relabel', 'confirm')


def region_majority(labels: torch.Tensor,
                    superpixels: torch.Tensor,
                    ratio: float = 0.8) -> torch.Tensor:
    """Class of every superpixel by the majority rule, or 255.

    A superpixel takes class c when MORE than ``ratio`` of all its pixels
    are c; pixels labelled 255 count in the denominator, so a half-unknown
    superpixel is never labelled. Vectorised with one ``bincount`` over
    ``superpixel * (K + 1) + class``. This is the one implementation of the
    rule, shared by the miner and the region classifier's training labels.

    Args:
        labels (Tensor): Labels of any shape (e.g. (H, W)), integer values
            in ``[0, K)`` or 255.
        superpixels (Tensor): Superpixel ids, same shape; negative ids (the
            padding of a batch) are ignored.
        ratio (float): Fraction of the superpixel a class must exceed.

    Returns:
        Tensor: (R,) int64 class per superpixel id ``0 .. R-1`` (R = max id
        + 1), 255 for unlabelled and absent ids.
    """
    if labels.shape != superpixels.shape:
        raise ValueError(f'labels {tuple(labels.shape)} and superpixels '
                         f'{tuple(superpixels.shape)} differ in shape')
    valid = superpixels >= 0
    ids = superpixels[valid].long()
    classes = labels[valid].long()
    num_regions = int(ids.max()) + 1 if ids.numel() else 0
    known = classes != IGNORE_INDEX
    num_classes = int(classes[known].max()) + 1 if known.any() else 1
    # Unknown pixels go to an extra last bin so they count in the total.
    classes = torch.where(known, classes, num_classes)
    counts = torch.bincount(ids * (num_classes + 1) + classes,
                            minlength=num_regions * (num_classes + 1))
    counts = counts.view(num_regions, num_classes + 1)
    totals = counts.sum(1).clamp(min=1)
    # A division, not `count > ratio * total`: a fraction equal to `ratio`
    # rounds to the same double as `ratio` itself, so "exactly 80 %" is
    # reliably not kept.
    fractions = counts[:, :num_classes].double() / totals[:, None].double()
    best_fraction, best_class = fractions.max(1)
    return torch.where(best_fraction > ratio, best_class, IGNORE_INDEX)


def superpixel_majority(labels: np.ndarray,
                        superpixels: np.ndarray,
                        ratio: float = 0.8) -> np.ndarray:
    """Region proposal: each superpixel labelled by the majority rule.

    Args:
        labels (np.ndarray): (H, W) uint8 labels, 255 = unknown.
        superpixels (np.ndarray): (H, W) integer superpixel ids >= 0.
        ratio (float): See :func:`region_majority`.

    Returns:
        np.ndarray: (H, W) uint8, constant on each superpixel.
    """
    superpixels = np.asarray(superpixels, dtype=np.int64)
    region_class = region_majority(torch.from_numpy(labels.astype(np.int64)),
                                   torch.from_numpy(superpixels), ratio)
    return region_class.numpy().astype(np.uint8)[superpixels]


@hookimpl
def iaffinity_miners() -> Dict[str, Any]:
    """Built-in region proposal rules."""
    return {'majority': superpixel_majority}


def labelled_regions(proposal: np.ndarray,
                     superpixels: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Ids and classes of the superpixels a proposal labels.

    Args:
        proposal (np.ndarray): (H, W) uint8, constant on each superpixel.
        superpixels (np.ndarray): (H, W) integer superpixel ids >= 0.

    Returns:
        tuple: ``(ids, classes)``, both (R',) int64, ids ascending.
    """
    superpixels = np.asarray(superpixels, dtype=np.int64)
    region_class = np.full(int(superpixels.max()) + 1, IGNORE_INDEX,
                           dtype=np.int64)
    region_class[superpixels] = proposal
    # One gather checks the whole contract (one class per superpixel).
    if not np.array_equal(region_class[superpixels], proposal):
        raise ValueError('the proposal is not constant on each superpixel; '
                         'make it with superpixel_majority first')
    ids = np.flatnonzero(region_class != IGNORE_INDEX)
    return ids, region_class[ids]


def check_mining_mode(mode: str, name: str = 'mining mode') -> None:
    """Raise a ValueError naming the valid modes unless ``mode`` is one.

    Args:
        mode (str): The mode to check.
        name (str): What the message calls it (e.g. the config key).
    """
    if mode not in MINING_MODES:
        renamed = (" ('confidence' is now 'confirm'; 'relabel' is the "
                   "paper's rule)" if mode == 'confidence' else '')
        raise ValueError(f'unknown {name} {mode!r}; use one of '
                         f'{MINING_MODES}{renamed}')


def _paint_regions(superpixels: np.ndarray, ids: np.ndarray,
                   classes: np.ndarray) -> np.ndarray:
    """(H, W) uint8 map: superpixels ``ids`` take ``classes``, others 255."""
    region_class = np.full(int(superpixels.max()) + 1, IGNORE_INDEX,
                           dtype=np.uint8)
    region_class[ids] = classes
    return region_class[superpixels]


def _probabilities(region_probs: Union[np.ndarray, torch.Tensor],
                   num_regions: int) -> np.ndarray:
    """(R', K) probabilities as numpy, checked against the region count."""
    probs = torch.as_tensor(region_probs).detach().cpu().numpy()
    if probs.shape[0] != num_regions:
        raise ValueError(f'region_probs has {probs.shape[0]} rows for '
                         f'{num_regions} regions')
    return probs


def confirm_regions(proposal: np.ndarray,
                    superpixels: np.ndarray,
                    region_probs: Union[np.ndarray, torch.Tensor],
                    threshold: float = 0.7) -> np.ndarray:
    """Keep the proposed regions the classifier confirms (mode 'confirm').

    Args:
        proposal (np.ndarray): (H, W) uint8 region proposal (constant on each
            superpixel, 255 = unknown).
        superpixels (np.ndarray): (H, W) integer superpixel ids >= 0.
        region_probs (np.ndarray | Tensor): (R', K) class probabilities of the
            labelled regions, in the order of :func:`labelled_regions`
            (ascending superpixel id).
        threshold (float): A region is kept when the probability of its
            proposed class is > threshold.

    Returns:
        np.ndarray: (H, W) uint8 mined labels, 255 elsewhere.
    """
    ids, classes = labelled_regions(proposal, superpixels)
    probs = _probabilities(region_probs, len(ids))
    keep = probs[np.arange(len(ids)), classes] > threshold
    return _paint_regions(superpixels, ids[keep], classes[keep])


def relabel_regions(superpixels: np.ndarray, region_ids: np.ndarray,
                    region_probs: Union[np.ndarray, torch.Tensor],
                    threshold: float = 0.7) -> np.ndarray:
    """Regions take the classifier's class where it is confident (the
    paper's rule, mode 'relabel').

    The proposed class plays no part: a region proposed as the wrong class
    is corrected, one the 80 % rule left unknown is labelled, when the
    classifier is confident.

    Args:
        superpixels (np.ndarray): (H, W) integer superpixel ids >= 0.
        region_ids (np.ndarray): (R',) ids of the scored regions.
        region_probs (np.ndarray | Tensor): (R', K) their class
            probabilities (untagged classes already 0, see
            :func:`region_probabilities`).
        threshold (float): A region takes its most probable class when that
            probability is > threshold, else it is unknown.

    Returns:
        np.ndarray: (H, W) uint8 mined labels, 255 elsewhere.
    """
    probs = _probabilities(region_probs, len(region_ids))
    classes = probs.argmax(1)
    keep = probs[np.arange(len(region_ids)), classes] > threshold
    return _paint_regions(superpixels, np.asarray(region_ids)[keep],
                          classes[keep])


@torch.no_grad()
def region_probabilities(model: torch.nn.Module, item: dict,
                         superpixels: np.ndarray, region_ids: np.ndarray,
                         allowed: np.ndarray,
                         short_edge: Optional[int] = None) -> torch.Tensor:
    """Classifier probabilities of some regions of one data set item.

    Args:
        model (RegionClassifier): The trained region classifier.
        item (dict): A data set item (``inputs`` (3, H, W), ``data_samples``).
        superpixels (np.ndarray): (H, W) superpixel ids.
        region_ids (np.ndarray): (R',) ids to score.
        allowed (np.ndarray): (K,) bool; other classes get probability 0.
        short_edge (int, optional): The classifier reads the image resized
            to this short edge (its training scale); the regions stay those
            of the (H, W) superpixel map, pooled over the feature cells
            their pixels fall in. None: the image's own size.

    Returns:
        Tensor: (R', K) probabilities, renormalised over the allowed classes.
    """
    data = model.data_preprocessor(
        dict(inputs=[item['inputs']], data_samples=[item['data_samples']]),
        False)
    device = data['inputs'].device
    logits = model.region_logits(
        resize_short_edge(data['inputs'], short_edge),
        torch.from_numpy(superpixels.astype(np.int64))[None].to(device),
        [torch.from_numpy(region_ids).to(device)])[0]
    # Untagged classes cannot be in the image: the softmax only compares
    # background and the tagged classes.
    mask = torch.from_numpy(allowed).to(device)
    return logits.masked_fill(~mask, float('-inf')).softmax(1).cpu()


def _mine_one(model: Optional[torch.nn.Module], item: dict,
              labels: np.ndarray, superpixels: Optional[np.ndarray],
              ratio: float, threshold: float, mode: str,
              short_edge: Optional[int] = None
              ) -> Tuple[np.ndarray, int, int]:
    """Next labels of one image and (regions scored, regions kept)."""
    if mode == 'none':
        return labels, 0, 0
    allowed = allowed_classes(item['data_samples'].metainfo['tags'])
    if mode == 'relabel':
        ids = np.unique(superpixels).astype(np.int64)
        probs = region_probabilities(model, item, superpixels, ids, allowed,
                                     short_edge)
        mined = relabel_regions(superpixels, ids, probs, threshold)
        return mined, len(ids), len(labelled_regions(mined, superpixels)[0])
    # A region proposed as an untagged class is noise by construction:
    # map those classes to unknown with a lookup table over uint8 values.
    untagged_to_unknown = np.arange(256, dtype=np.uint8)
    untagged_to_unknown[np.flatnonzero(~allowed)] = IGNORE_INDEX
    proposal = untagged_to_unknown[superpixel_majority(labels, superpixels,
                                                       ratio)]
    ids, _ = labelled_regions(proposal, superpixels)
    if mode == 'majority' or len(ids) == 0:
        return proposal, len(ids), len(ids)
    probs = region_probabilities(model, item, superpixels, ids, allowed,
                                 short_edge)
    mined = confirm_regions(proposal, superpixels, probs, threshold)
    return mined, len(ids), len(labelled_regions(mined, superpixels)[0])


def mine_labels(model: Optional[torch.nn.Module],
                dataset: Sequence,
                label_dir: str,
                out_dir: str,
                superpixel_cache: SuperpixelCache,
                ratio: float = 0.8,
                threshold: float = 0.7,
                mode: str = 'relabel',
                progress: bool = True,
                keep_tags_from: Optional[str] = None,
                keep_objects_from: Optional[str] = None,
                short_edge: Optional[int] = None) -> Dict[str, Any]:
    """Mine the next label folder ``out_dir`` from the labels in ``label_dir``.

    Resumable: images whose output already exists are skipped (outputs are
    written atomically, so an existing file is complete). Images are sharded
    across distributed ranks (:mod:`.label_writer`).

    Args:
        model (RegionClassifier | None): Needed for the
            :data:`CLASSIFIER_MODES`, trained on the regions the 80 % rule
            labels in ``label_dir``.
        dataset (BaseSegDataset): Items with ``inputs`` (3, H, W) uint8 BGR
            and ``data_samples`` whose metainfo has ``img_id`` and ``tags``;
            the pipeline must keep the original image size.
        label_dir (str): Folder of ``<img_id>.png`` input labels (the unary
            output); mode ``'relabel'`` only checks them, its classes come
            from the classifier.
        out_dir (str): Folder for the mined ``<img_id>.png``.
        superpixel_cache (SuperpixelCache): Superpixels of each image.
        ratio (float): Majority rule ratio (0.8 in the paper).
        threshold (float): Confidence threshold (0.7 in the paper).
        mode (str): One of :data:`MINING_MODES` (see the module docstring).
        progress (bool): Show a tqdm progress bar.
        keep_tags_from (str, optional): A label folder (the seeds) whose
            ``<img_id>.png`` gives a tagged class that the mined map lost
            its pixels (:func:`~.lost_tags.restore_lost_tags`).
        keep_objects_from (str, optional): The previous step's mined folder:
            the objects of its ``<img_id>.png`` stay where the new map has
            background or unknown
            (:func:`~.kept_objects.keep_previous_objects`); applied before
            ``keep_tags_from``.
        short_edge (int, optional): The region classifier reads each image
            at this short edge (:func:`region_probabilities`); labels and
            superpixels stay at the image's size.

    Returns:
        dict: ``images`` written, ``skipped`` (already there),
        ``regions_scored`` (every superpixel for ``'relabel'``, the proposed
        regions for ``'confirm'`` and ``'majority'``), ``regions_kept``
        (labelled in the output), ``empty_images`` (ids of written
        all-unknown maps) and, with ``keep_tags_from``, ``restored_tags``
        (classes restored).
    """
    check_mining_mode(mode)
    if mode in CLASSIFIER_MODES and model is None:
        raise ValueError(f'mining mode {mode!r} needs a region classifier')
    if model is not None:
        model.eval()
    os.makedirs(out_dir, exist_ok=True)
    num_classes = len(dataset.metainfo['classes'])
    pending, done = pending_images(dataset, out_dir)
    summary = dict(images=0, skipped=done, regions_scored=0,
                   regions_kept=0, empty_images=[])
    if keep_tags_from is not None:
        summary['restored_tags'] = 0
    for item, img_id in load_images(dataset, pending, progress,
                                    f'mining ({mode})'):
        out_path = osp.join(out_dir, f'{img_id}.png')
        label_path = osp.join(label_dir, f'{img_id}.png')
        labels = read_label(label_path)
        rgb = item_rgb(item)
        if labels.shape != rgb.shape[:2]:
            raise ValueError(f'{label_path} has shape {labels.shape} but the '
                             f'image {img_id} is {rgb.shape[:2]}; the mining '
                             'pipeline must not resize')
        check_label_values(labels, num_classes, label_path)
        # The "no mining" ablation needs no superpixels.
        superpixels = None if mode == 'none' else superpixel_cache.get(
            img_id, rgb)
        mined, scored, kept = _mine_one(model, item, labels, superpixels,
                                        ratio, threshold, mode, short_edge)
        if keep_objects_from is not None:
            mined = keep_previous_objects_from(mined, keep_objects_from,
                                               img_id, num_classes)
        if keep_tags_from is not None:
            mined, lost = restore_lost_tags_from(
                mined, item['data_samples'].metainfo['tags'],
                keep_tags_from, img_id)
            summary['restored_tags'] += len(lost)
        write_label(out_path, mined)
        summary['images'] += 1
        summary['regions_scored'] += scored
        summary['regions_kept'] += kept
        if (mined == IGNORE_INDEX).all():
            summary['empty_images'].append(img_id)
    return summary
