"""E-step of Algorithm 1: refine the unary scores with the learned affinity.

``alpha_p = G alpha_u`` for every training image; the argmax of ``alpha_u``
(the unary net's output) and of ``alpha_p`` (both restricted to the image's
tags + background) are written as label maps, either or both
(:func:`write_label_maps`). With ``min_confidence`` the refined map keeps a
pixel only where its class has at least that probability in ``alpha_p``
(over background and the tags); the rest is unknown (255), as the seeds
leave the uncertain band around objects unknown. With a superpixel cache
the refined probabilities G alpha_u are averaged inside each superpixel
before the argmax: the smoothness within regions that the loss of eq. (8)
asks of G, applied to its output. With ``keep_tags_from``
a tagged class that the refined map lost takes its pixels in another label
folder (the seeds): a tagged object never vanishes from the labels. With
``short_edge`` both nets read each image at the short edge they were
trained at, whatever size the photographs have, and the maps are resized
back to the image (as mmseg's test pipelines ``Resize`` and its
segmentors return ``ori_shape``).
"""
import os
import os.path as osp
from typing import Dict, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.dataset import pseudo_collate
from torch import Tensor, nn

from ..models.losses.superpixel_smoothness_loss import superpixel_mean
from .label_io import IGNORE_INDEX, write_label
from .label_writer import images_to_write
from .lost_tags import restore_lost_tags_from
from .scores import resize_short_edge, restrict_to_tags, unary_scores
from .superpixels import SuperpixelCache, item_rgb


def _resize_to(scores: Tensor, size: Tuple[int, int]) -> Tensor:
    """(N, K, h, w) scores bilinearly resized to (H, W) = ``size``."""
    if tuple(scores.shape[2:]) == size:
        return scores
    return F.interpolate(scores, size=size, mode='bilinear',
                         align_corners=False)


@torch.no_grad()
def refine_image(unary: nn.Module, refiner: Optional[nn.Module],
                 item: dict, min_confidence: Optional[float] = None,
                 short_edge: Optional[int] = None,
                 superpixels: Optional[Union[np.ndarray, Tensor]] = None
                 ) -> Dict[str, torch.Tensor]:
    """Unary and refined label maps of one dataset item.

    Args:
        unary (nn.Module): The unary segmentor (used on its own when
            ``refiner`` is None: then the refined map is the unary one).
        refiner (nn.Module, optional): A ``FrozenUnaryRefiner`` (e.g.
            ``SPNRefiner``, ``AffinityRefiner``) holding the unary.
        item (dict): A dataset item with ``inputs`` (3, H, W) and
            ``data_samples``.
        min_confidence (float, optional): Refined pixels whose class has a
            smaller refined probability (softmax of the refined logits over
            background and the tags) are unknown.
        short_edge (int, optional): Both nets read the image resized to
            this short edge (the scale they were trained at); their scores
            are resized back to (H, W) bilinearly before the argmax. None:
            the image's own size.
        superpixels (np.ndarray | Tensor, optional): (H, W) integer
            superpixel ids of the image: the refined probabilities (over
            background and the tags) are averaged inside each superpixel
            before the argmax and ``min_confidence``. The unary map is left
            as it is.

    Returns:
        dict: ``unary`` and ``refined`` label maps, (H, W) uint8.
    """
    model = refiner if refiner is not None else unary
    batch = model.data_preprocessor(pseudo_collate([item]), False)
    data_samples = batch['data_samples']
    size = tuple(batch['inputs'].shape[2:])
    inputs = resize_short_edge(batch['inputs'], short_edge)
    if refiner is None:
        unary_probs = _resize_to(unary_scores(unary, inputs, data_samples),
                                 size)
        refined_logits = unary_probs.log()
    else:
        unary_probs = refiner.unary_probs(inputs, data_samples)
        refined_logits = _resize_to(refiner.refine(inputs, unary_probs)[0],
                                    size)
        unary_probs = _resize_to(unary_probs, size)
    tags = torch.stack([
        torch.as_tensor(sample.metainfo['tags']) for sample in data_samples
    ]).to(refined_logits.device)
    # A refiner may hold an unrestricted unary: both maps only ever name
    # background or a tagged class.
    restricted = {name: restrict_to_tags(scores, tags)[0]
                  for name, scores in (('unary', unary_probs),
                                       ('refined', refined_logits))}
    if superpixels is not None:
        if tuple(superpixels.shape) != size:
            raise ValueError(f'superpixels of shape {tuple(superpixels.shape)}'
                             f' for an image of {size}')
        # log of the mean probabilities: their softmax is the means again.
        restricted['refined'] = superpixel_mean(
            restricted['refined'].softmax(0)[None],
            torch.as_tensor(superpixels, dtype=torch.long,
                            device=refined_logits.device)[None]
        )[0].log()
    maps = {name: scores.argmax(0).to(torch.uint8)
            for name, scores in restricted.items()}
    if min_confidence is not None:
        confidence = restricted['refined'].softmax(0).max(0).values
        maps['refined'][confidence < min_confidence] = IGNORE_INDEX
    return maps


def write_label_maps(unary: nn.Module, refiner: Optional[nn.Module],
                     dataset, out_dirs: Dict[str, str],
                     progress: bool = True,
                     min_confidence: Optional[float] = None,
                     keep_tags_from: Optional[str] = None,
                     short_edge: Optional[int] = None,
                     superpixel_cache: Optional[SuperpixelCache] = None
                     ) -> dict:
    """Write ``<img_id>.png`` maps of :func:`refine_image` for every image.

    Args:
        unary (nn.Module): The unary segmentor.
        refiner (nn.Module, optional): The pairwise net holding it; None
            when only unary labels are written, or without a pairwise net
            (then the refined labels are the unary ones).
        dataset: The images (an inference pipeline).
        out_dirs (dict): Folder per map to write, ``'unary'`` and/or
            ``'refined'``.
        progress (bool): Show a progress bar.
        min_confidence (float, optional): See :func:`refine_image`.
        keep_tags_from (str, optional): A label folder (the seeds) whose
            ``<img_id>.png`` gives a tagged class that the refined map lost
            its pixels (:func:`~.lost_tags.restore_lost_tags`).
        short_edge (int, optional): See :func:`refine_image`.
        superpixel_cache (SuperpixelCache, optional): Where each image's
            superpixels come from when the refined probabilities are
            averaged inside them (:func:`refine_image`'s ``superpixels``).

    Resumable: an image whose last map (``refined`` when written) exists is
    skipped.

    Returns:
        dict: number of ``images`` written by this process and, with
        ``keep_tags_from``, of ``restored_tags`` (classes restored).
    """
    names = [name for name in ('unary', 'refined') if name in out_dirs]
    if not names or set(out_dirs) - set(names):
        raise ValueError(f"out_dirs must name 'unary' and/or 'refined', got "
                         f'{sorted(out_dirs)}')
    for name in names:
        os.makedirs(out_dirs[name], exist_ok=True)
    if keep_tags_from is not None and 'refined' not in names:
        raise ValueError('keep_tags_from acts on the refined map: out_dirs '
                         "has no 'refined'")
    written = restored = 0
    for item, img_id in images_to_write(dataset, out_dirs[names[-1]],
                                        progress, desc=' + '.join(names)):
        superpixels = None if superpixel_cache is None else \
            superpixel_cache.get(img_id, item_rgb(item))
        labels = {name: label_map.cpu().numpy() for name, label_map in
                  refine_image(unary, refiner, item, min_confidence,
                               short_edge, superpixels).items()}
        if keep_tags_from is not None:
            labels['refined'], lost = restore_lost_tags_from(
                labels['refined'], item['data_samples'].metainfo['tags'],
                keep_tags_from, img_id)
            restored += len(lost)
        # In this order: the last file marks the image as done.
        for name in names:
            write_label(osp.join(out_dirs[name], f'{img_id}.png'),
                        labels[name])
        written += 1
    if keep_tags_from is None:
        return dict(images=written)
    return dict(images=written, restored_tags=restored)
