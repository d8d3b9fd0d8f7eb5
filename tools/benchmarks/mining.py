"""Benchmark superpixels and confident-region mining on 2 CPU threads.

``python tools/benchmarks/mining.py [--repeats 3]``

Prints a markdown table: superpixel images/s (Felzenszwalb, SLIC) and mining
images/s (mode 'relabel': the region classifier of
``configs/_base_/models/region_classifier.py``, random init, scores every
superpixel) at 128 x 128 and 500 x 375 on random smooth-noise images; then
the precision / labelled fraction of mined labels versus their noisy input
on a synthetic case whose ground truth follows the image colours
(wrong-class discs painted in), for an oracle classifier under the modes
'confirm' and 'relabel'.
"""
import argparse
import os.path as osp
import time
from typing import Callable, Dict

import iaffinity_plugins  # noqa: F401  (before mmseg: compat + registration)
import numpy as np
import torch
from mmengine.config import Config
from skimage.filters import gaussian

from iaffinity_plugins.evaluation.label_metrics import (confusion_matrix,
                                                        label_quality)
from iaffinity_plugins.labels.mining import (confirm_regions,
                                             labelled_regions,
                                             region_majority, relabel_regions,
                                             superpixel_majority)
from iaffinity_plugins.labels.superpixels import compute_superpixels
from iaffinity_plugins.registry import MODELS

CONFIG = osp.join(osp.dirname(__file__), '..', '..', 'configs', '_base_',
                  'models', 'region_classifier.py')
SIZES = ((128, 128), (375, 500))
NUM_CLASSES = 4


def smooth_noise(rng: np.random.Generator, height: int, width: int
                 ) -> np.ndarray:
    """(H, W, 3) uint8 RGB: Gaussian-blurred noise stretched to 0..255."""
    image = gaussian(rng.random((height, width, 3)), sigma=max(height, width)
                     / 100, channel_axis=-1)
    image = (image - image.min()) / (np.ptp(image) + 1e-8)
    return (255 * image).astype(np.uint8)


def per_second(function: Callable[[], object], repeats: int) -> float:
    """Calls per second of ``function`` (best of ``repeats``)."""
    function()  # warm-up (allocations, lazy imports)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1.0 / min(times)


def build_classifier() -> torch.nn.Module:
    cfg = Config.fromfile(CONFIG)
    cfg.model.num_classes = NUM_CLASSES
    return MODELS.build(cfg.model).eval()


@torch.no_grad()
def mine_one(model: torch.nn.Module, image: np.ndarray,
             superpixels: np.ndarray) -> np.ndarray:
    """Classifier probabilities of every superpixel and the 0.7 rule of
    mode 'relabel' on one image."""
    ids = np.unique(superpixels).astype(np.int64)
    inputs = model.data_preprocessor(dict(inputs=[torch.from_numpy(
        image[..., ::-1].copy()).permute(2, 0, 1)]), False)['inputs']
    logits = model.region_logits(
        inputs, torch.from_numpy(superpixels.astype(np.int64))[None],
        [torch.from_numpy(ids)])[0]
    return relabel_regions(superpixels, ids, logits.softmax(1))


def speed_rows(repeats: int) -> list:
    rng = np.random.default_rng(0)
    model = build_classifier()
    rows = []
    for height, width in SIZES:
        image = smooth_noise(rng, height, width)
        superpixels = compute_superpixels(image)
        rows.append(dict(
            size=f'{width}x{height}',
            regions=int(superpixels.max()) + 1,
            felzenszwalb=per_second(lambda: compute_superpixels(image),
                                    repeats),
            slic=per_second(lambda: compute_superpixels(image, 'slic'),
                            repeats),
            mining=per_second(lambda: mine_one(model, image, superpixels),
                              repeats)))
    return rows


def noisy_case(rng: np.random.Generator, height: int = 375,
               width: int = 500, cells: int = 40) -> tuple:
    """Image, ground truth and noisy labels.

    The ground truth is a Voronoi partition with a random class per cell;
    the image colours each class and adds smooth-noise texture, so image
    edges (and superpixels) follow the ground truth, as in real photos.
    """
    seeds = rng.integers(0, (height, width), (cells, 2))
    yy, xx = np.mgrid[:height, :width]
    nearest = np.argmin((yy[..., None] - seeds[:, 0]) ** 2
                        + (xx[..., None] - seeds[:, 1]) ** 2, axis=-1)
    gt = rng.integers(0, NUM_CLASSES, cells).astype(np.uint8)[nearest]
    colours = rng.integers(40, 216, (NUM_CLASSES, 3))
    texture = smooth_noise(rng, height, width).astype(np.int64) - 128
    image = np.clip(colours[gt] + texture // 4, 0, 255).astype(np.uint8)
    labels = gt.copy()
    for _ in range(12):
        y, x = rng.integers(0, height), rng.integers(0, width)
        disc = (yy - y) ** 2 + (xx - x) ** 2 <= (height // 12) ** 2
        labels[disc] = (gt[y, x] + rng.integers(1, NUM_CLASSES)) % NUM_CLASSES
    return image, gt, labels


def oracle_probs(gt: np.ndarray, superpixels: np.ndarray,
                 ids: np.ndarray) -> torch.Tensor:
    """One-hot probabilities of each region's ground-truth majority class."""
    classes = region_majority(torch.from_numpy(gt.astype(np.int64)),
                              torch.from_numpy(superpixels.astype(np.int64)),
                              ratio=0.5)[torch.from_numpy(ids)]
    probs = torch.zeros(len(ids), NUM_CLASSES)
    found = classes != 255
    probs[found, classes[found]] = 1
    return probs


def quality_rows(images: int) -> Dict[str, dict]:
    rng = np.random.default_rng(1)
    confusions = {name: np.zeros((NUM_CLASSES, NUM_CLASSES + 1), np.int64)
                  for name in ('input', 'majority', 'oracle confirm',
                               'oracle relabel')}
    for _ in range(images):
        image, gt, labels = noisy_case(rng)
        superpixels = compute_superpixels(image)
        proposal = superpixel_majority(labels, superpixels)
        ids, _ = labelled_regions(proposal, superpixels)
        every = np.unique(superpixels).astype(np.int64)
        confirmed = confirm_regions(proposal, superpixels,
                                    oracle_probs(gt, superpixels, ids))
        relabelled = relabel_regions(superpixels, every,
                                     oracle_probs(gt, superpixels, every))
        for name, pred in (('input', labels), ('majority', proposal),
                           ('oracle confirm', confirmed),
                           ('oracle relabel', relabelled)):
            confusions[name] += confusion_matrix(pred, gt, NUM_CLASSES)
    return {name: label_quality(c) for name, c in confusions.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--images', type=int, default=8,
                        help='images of the noisy-label quality case')
    args = parser.parse_args()
    torch.set_num_threads(2)
    print('Command: python tools/benchmarks/mining.py '
          f'--repeats {args.repeats} --images {args.images} '
          f'(torch threads: {torch.get_num_threads()})\n')
    print('| image (WxH) | superpixels | Felzenszwalb img/s | SLIC img/s '
          '| mining img/s |\n| --- | --- | --- | --- | --- |')
    for row in speed_rows(args.repeats):
        print(f"| {row['size']} | {row['regions']} | "
              f"{row['felzenszwalb']:.1f} | {row['slic']:.1f} | "
              f"{row['mining']:.2f} |")
    print('\n| labels (500x375, noisy) | precision | labelled fraction '
          '| mIoU |\n| --- | --- | --- | --- |')
    for name, q in quality_rows(args.images).items():
        print(f"| {name} | {q['precision']:.1f} | "
              f"{q['labelled_fraction']:.1f} | {q['miou']:.1f} |")


if __name__ == '__main__':
    main()
