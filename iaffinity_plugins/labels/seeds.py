"""CAMs -> seed labels Y0 (step 0 of Algorithm 1, Sec. 3.2.1 / 4.1).

Shapes: K-1 foreground classes (background is never a tag), H x W image size.

1. :func:`multi_scale_cam`: the CAM classifier's maps over several scales and
   horizontal flips, ReLU'd, upsampled to the image, summed, normalised by
   each class's maximum and zeroed for classes not in the image's tags.
2. A seed rule turns the (K-1, H, W) CAMs into an (H, W) uint8 label map with
   0 = background, c = foreground class c (1-based), 255 = unknown:
   :func:`threshold_seeds` (IRN-style constant background score) or
   :func:`psa_seeds` (PSA's (1 - max CAM)^alpha background). Both are
   registered as ``seed_generator`` plugins; configs pick one by name.
3. :func:`write_seeds`: the per-image loop over a data set, writing palette
   PNGs (and optionally float16 CAMs) resumably.
"""
import io
import logging
import os.path as osp
from typing import Callable, Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from torch import Tensor

from iaffinity_plugins.labels.label_io import atomic_write_bytes, write_label
from iaffinity_plugins.labels.label_writer import load_images, pending_images
from iaffinity_plugins.plugins import get_extension, hookimpl

IGNORE_INDEX = 255
# Keys of a seed config that are CAM inference options of write_seeds, not
# arguments of the seed rule.
CAM_OPTIONS = ('scales', 'flip', 'cam_short_edge')
ArrayLike = Union[np.ndarray, Tensor]


def _present(tags: ArrayLike) -> Tensor:
    """Boolean (K-1,) mask of the tagged foreground classes."""
    if not isinstance(tags, Tensor):
        tags = torch.as_tensor(np.asarray(tags, dtype=np.float32))
    return tags > 0.5


@torch.no_grad()
def multi_scale_cam(model: torch.nn.Module,
                    image: Tensor,
                    tags: ArrayLike,
                    scales: Sequence[float] = (1.0, 0.5, 1.5, 2.0),
                    flip: bool = True,
                    cam_short_edge: Optional[int] = None) -> Tensor:
    """Multi-scale, flip-augmented CAMs normalised to [0, 1] per class.

    Args:
        model: A model with ``cam(inputs (N, 3, h, w)) -> (N, K-1, h', w')``,
            e.g. :class:`~iaffinity_plugins.models.CAMClassifier`.
        image (Tensor): One normalised image of shape (1, 3, H, W).
        tags (np.ndarray | Tensor): (K-1,) multi-hot tags.
        scales (Sequence[float]): Input scales (bilinear resizing).
        flip (bool): Also run each scale horizontally flipped.
        cam_short_edge (int, optional): When given, ``scales`` are
            multiples of this short edge instead of the image's own size:
            scale s resizes the image to a short edge of s *
            cam_short_edge. Set it to the short edge the classifier was
            trained at, and its CAMs have the resolution they were trained
            with whatever size the user's photographs have.

    Returns:
        Tensor: (K-1, H, W) float CAMs; each tagged class peaks at
        max / (max + 1e-5) ~= 1, untagged classes are 0.
    """
    if image.dim() != 4 or image.shape[0] != 1:
        raise ValueError(f'multi_scale_cam expects one image (1, 3, H, W), '
                         f'got {tuple(image.shape)}')
    size = image.shape[2:]
    base = 1.0 if cam_short_edge is None else cam_short_edge / min(size)
    total = 0
    for scale in (base * s for s in scales):
        scaled = image if scale == 1.0 else F.interpolate(
            image, scale_factor=scale, mode='bilinear', align_corners=False)
        # Original and mirrored image in one batch: one forward per scale.
        batch = torch.cat([scaled, scaled.flip(-1)]) if flip else scaled
        cams = F.relu(model.cam(batch))
        if flip:
            cams = cams[:1] + cams[1:].flip(-1)
        total = total + F.interpolate(
            cams, size=size, mode='bilinear', align_corners=False)[0]
    present = _present(tags).to(total.device)
    if present.shape != total.shape[:1]:
        raise ValueError(f'tags have shape {tuple(present.shape)} but the '
                         f'model gives {total.shape[0]} CAM classes')
    # 1e-5 keeps classes with an all-zero map at 0 instead of NaN.
    peak = total.flatten(1).max(dim=1).values[:, None, None]
    return total / (peak + 1e-5) * present[:, None, None]


def _tagged_max(cams: ArrayLike, tags: ArrayLike) -> Tuple[Tensor, Tensor]:
    """Per-pixel max and argmax over the tagged classes only.

    Returns:
        tuple[Tensor, Tensor]: (H, W) max CAM (0 when no tag) and (H, W)
        1-based class index of that max.
    """
    cams = torch.as_tensor(cams, dtype=torch.float32)
    if cams.dim() != 3:
        raise ValueError(f'cams must be (K-1, H, W), got {tuple(cams.shape)}')
    if cams.shape[0] >= IGNORE_INDEX:
        raise ValueError(f'{cams.shape[0]} foreground classes do not fit a '
                         f'uint8 label map with {IGNORE_INDEX} = unknown')
    present = _present(tags)
    if present.shape != cams.shape[:1]:
        raise ValueError(f'tags have shape {tuple(present.shape)}, cams '
                         f'{tuple(cams.shape)}')
    # Untagged classes must never win, whatever the caller's CAMs hold.
    cams = cams.clamp(min=0) * present[:, None, None]
    peak, index = cams.max(dim=0)
    return peak, index + 1


def threshold_seeds(cams: ArrayLike,
                    tags: ArrayLike,
                    fg_threshold: float = 0.30,
                    bg_threshold: float = 0.05) -> np.ndarray:
    """IRN-style seeds from constant background thresholds.

    Let m be the pixel's max CAM over the tagged classes: m >= fg_threshold
    -> that class; m < bg_threshold -> background 0; otherwise 255.

    Args:
        cams (np.ndarray | Tensor): (K-1, H, W) CAMs normalised to [0, 1].
        tags (np.ndarray | Tensor): (K-1,) multi-hot tags.
        fg_threshold (float): Lowest CAM of a confident foreground pixel.
        bg_threshold (float): CAM below which a pixel is confident background.

    Returns:
        np.ndarray: (H, W) uint8 labels.
    """
    if not 0 <= bg_threshold <= fg_threshold:
        raise ValueError(f'need 0 <= bg_threshold <= fg_threshold, got '
                         f'{bg_threshold}, {fg_threshold}')
    peak, index = _tagged_max(cams, tags)
    labels = torch.full_like(index, IGNORE_INDEX)
    labels[peak >= fg_threshold] = index[peak >= fg_threshold]
    labels[peak < bg_threshold] = 0
    return labels.numpy().astype(np.uint8)


def psa_seeds(cams: ArrayLike,
              tags: ArrayLike,
              alpha_strong_bg: float = 4,
              alpha_weak_bg: float = 32) -> np.ndarray:
    """PSA-style seeds (Ahn and Kwak 2018) from a power background score.

    The background score is (1 - m)^alpha with m the pixel's max CAM. Since
    1 - m is in [0, 1], a smaller alpha gives a larger (stronger) background.
    A pixel is class c when c still beats the strong background
    (``m > (1 - m)^alpha_strong_bg``), background when the weak background
    still beats every class (``(1 - m)^alpha_weak_bg >= m``), else 255.
    Ties go to background, as ``argmax`` over [bg, classes] does in PSA. No
    CRF is applied.

    Args:
        cams (np.ndarray | Tensor): (K-1, H, W) CAMs normalised to [0, 1].
        tags (np.ndarray | Tensor): (K-1,) multi-hot tags.
        alpha_strong_bg (float): Exponent of the strong background (PSA: 4).
        alpha_weak_bg (float): Exponent of the weak background (PSA: 32).

    Returns:
        np.ndarray: (H, W) uint8 labels.
    """
    if not 0 < alpha_strong_bg <= alpha_weak_bg:
        raise ValueError(f'need 0 < alpha_strong_bg <= alpha_weak_bg, got '
                         f'{alpha_strong_bg}, {alpha_weak_bg}')
    peak, index = _tagged_max(cams, tags)
    background = (1 - peak).clamp(min=0)
    confident_fg = peak > background.pow(alpha_strong_bg)
    labels = torch.full_like(index, IGNORE_INDEX)
    labels[confident_fg] = index[confident_fg]
    labels[background.pow(alpha_weak_bg) >= peak] = 0
    return labels.numpy().astype(np.uint8)


@hookimpl
def iaffinity_seed_generators() -> Dict[str, Callable]:
    """The built-in seed rules, selected by ``seed_cfg['type']``."""
    return {'threshold': threshold_seeds, 'psa': psa_seeds}


def _save_cam(path: str, cams: Tensor) -> None:
    """Write (K-1, H, W) CAMs as a float16 .npy file, atomically."""
    buffer = io.BytesIO()
    np.save(buffer, cams.cpu().numpy().astype(np.float16))
    atomic_write_bytes(path, buffer.getvalue())


def _metainfo(item: dict, img_id: str, key: str):
    """``item['data_samples'].metainfo[key]`` or an error naming the item."""
    metainfo = item['data_samples'].metainfo
    if key not in metainfo:
        raise KeyError(f"data set item {img_id} "
                       f"({metainfo.get('img_path', 'no img_path')}) has no "
                       f"metainfo[{key!r}]: end the pipeline with "
                       'PackWSSSInputs')
    return metainfo[key]


@torch.no_grad()
def write_seeds(model: torch.nn.Module,
                dataset: Sequence[dict],
                out_dir: str,
                seed_cfg: dict,
                cam_dir: Optional[str] = None,
                scales: Sequence[float] = (1.0, 0.5, 1.5, 2.0),
                flip: bool = True,
                cam_short_edge: Optional[int] = None,
                progress: bool = True) -> Dict[str, int]:
    """Write the seed labels of every image of ``dataset``.

    Writes ``<out_dir>/<img_id>.png`` (VOC palette, 255 = unknown) and, when
    ``cam_dir`` is given, ``<cam_dir>/<img_id>.npy`` ((K-1, H, W) float16
    normalised CAMs). Resumable: an image whose PNG already exists is
    skipped; both files are written atomically, the CAM first. Images are
    sharded across distributed ranks (:mod:`.label_writer`). Images with no tag become all background
    and are counted (with one warning listing them). The model is put in
    eval mode.

    Args:
        model: The CAM classifier (``cam`` and ``data_preprocessor``).
        dataset: Items are dicts with 'inputs' ((3, H, W) uint8 tensor, BGR
            as loaded) and 'data_samples' (SegDataSample with metainfo
            'img_id' and 'tags').
        out_dir (str): Label folder.
        seed_cfg (dict): ``type`` (a ``seed_generator`` name, e.g.
            'threshold' or 'psa') plus that rule's keyword arguments.
        cam_dir (str, optional): Folder for the CAMs.
        scales, flip, cam_short_edge: See :func:`multi_scale_cam`.
        progress (bool): Show a tqdm progress bar.

    Returns:
        dict: counts 'total', 'written', 'skipped', 'empty_tags'.
    """
    seed_kwargs = dict(seed_cfg)
    seed_rule = get_extension('seed_generator', seed_kwargs.pop('type'))
    model.eval()
    pending, done = pending_images(dataset, out_dir)
    counts = dict(total=len(pending) + done, written=0, skipped=done,
                  empty_tags=0)
    empty_ids = []
    for item, img_id in load_images(dataset, pending, progress, 'seeds'):
        label_path = osp.join(out_dir, f'{img_id}.png')
        cam_path = None if cam_dir is None else osp.join(cam_dir,
                                                         f'{img_id}.npy')
        tags = _metainfo(item, img_id, 'tags')
        no_tags = not _present(tags).any()
        if no_tags:
            counts['empty_tags'] += 1
            empty_ids.append(img_id)
        # The model's own preprocessor: BGR->RGB, mean/std, device.
        batch = model.data_preprocessor(
            dict(inputs=[item['inputs']], data_samples=[item['data_samples']]),
            False)
        cams = multi_scale_cam(model, batch['inputs'], tags, scales, flip,
                               cam_short_edge)
        if cam_path is not None:
            _save_cam(cam_path, cams)
        # No tag means no object: all background, whatever the rule says
        # about all-zero CAMs (e.g. a threshold rule with bg_threshold 0).
        label = (np.zeros(cams.shape[1:], np.uint8) if no_tags
                 else seed_rule(cams.cpu(), tags, **seed_kwargs))
        write_label(label_path, label)
        counts['written'] += 1
    if empty_ids:
        print_log(f'{len(empty_ids)} image(s) have no tag and were labelled '
                  f'all background: {empty_ids[:10]}'
                  f"{' ...' if len(empty_ids) > 10 else ''}",
                  logger='current', level=logging.WARNING)
    return counts
