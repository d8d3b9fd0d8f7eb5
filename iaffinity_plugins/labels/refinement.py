"""E-step of Algorithm 1: refine the unary scores with the learned affinity.

``alpha_p = G alpha_u`` for every training image; the argmax of ``alpha_u``
and of ``alpha_p`` (both restricted to the image's tags + background) are
written as label maps.
"""
import os
import os.path as osp
from typing import Dict, Optional

import torch
from mmengine.dataset import pseudo_collate
from torch import nn

from .label_io import write_label
from .label_writer import images_to_write
from .scores import restrict_to_tags, unary_scores


@torch.no_grad()
def refine_image(unary: nn.Module, refiner: Optional[nn.Module],
                 item: dict) -> Dict[str, torch.Tensor]:
    """Unary and refined label maps of one dataset item.

    Args:
        unary (nn.Module): The unary segmentor (used when ``refiner`` is None,
            the "no pairwise" ablation).
        refiner (nn.Module, optional): A ``FrozenUnaryRefiner`` (e.g.
            ``SPNRefiner``, ``AffinityRefiner``) holding the unary.
        item (dict): A dataset item with ``inputs`` (3, H, W) and
            ``data_samples``.

    Returns:
        dict: ``unary`` and ``refined`` label maps, (H, W) uint8.
    """
    model = refiner if refiner is not None else unary
    batch = model.data_preprocessor(pseudo_collate([item]), False)
    inputs, data_samples = batch['inputs'], batch['data_samples']
    if refiner is None:
        unary_probs = unary_scores(unary, inputs, data_samples)
        refined_logits = unary_probs
    else:
        unary_probs = refiner.unary_probs(inputs, data_samples)
        refined_logits, _ = refiner.refine(inputs, unary_probs)
    tags = torch.stack([
        torch.as_tensor(sample.metainfo['tags']) for sample in data_samples
    ]).to(refined_logits.device)
    refined_logits = restrict_to_tags(refined_logits, tags)
    return dict(unary=unary_probs[0].argmax(0).to(torch.uint8),
                refined=refined_logits[0].argmax(0).to(torch.uint8))


def write_refined_labels(unary: nn.Module, refiner: Optional[nn.Module],
                         dataset, refined_dir: str, unary_dir: str,
                         progress: bool = True) -> dict:
    """Write ``<img_id>.png`` unary and refined labels for every image.

    Resumable: an image whose refined label exists is skipped.

    Returns:
        dict: number of ``images`` written by this process.
    """
    os.makedirs(refined_dir, exist_ok=True)
    os.makedirs(unary_dir, exist_ok=True)
    written = 0
    for item, img_id in images_to_write(dataset, refined_dir, progress,
                                        desc='refine'):
        labels = refine_image(unary, refiner, item)
        # The unary label first: the refined file marks the image as done.
        write_label(osp.join(unary_dir, f'{img_id}.png'),
                    labels['unary'].cpu().numpy())
        write_label(osp.join(refined_dir, f'{img_id}.png'),
                    labels['refined'].cpu().numpy())
        written += 1
    return dict(images=written)
