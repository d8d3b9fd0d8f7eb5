"""Seed rules and CAM scales on a finished CAM stage, measured.

``python tools/benchmarks/seeds.py CONFIG WORK_DIR [--scales 1,0.5,1.5 ...]
[--rules threshold:0.4:0.2 psa:4:32 ...] [--cfg-options ...]``

Loads the CAM classifier that ``WORK_DIR``'s manifest records for
``seeds/cam`` (trained by ``CONFIG``), computes every training image's CAMs
once per scale set (``multi_scale_cam``, with flip) and applies each seed
rule to them. Prints a markdown table: scales, rule -> seed mIoU, precision,
labelled fraction, background IoU and the error breakdown (background given
an object, objects given the background, wrong class, objects unknown).
Scales are multiples of the config's ``seeds.cam_short_edge`` when it sets
one (see :func:`~iaffinity_plugins.labels.seeds.multi_scale_cam`).
"""
import argparse
import copy
import json
import os.path as osp
from typing import Dict, List, Tuple

import iaffinity_plugins  # noqa: F401  (before mmseg: compat + registration)
import numpy as np
import torch
from mmengine.config import DictAction
from mmengine.registry import init_default_scope

from iaffinity_plugins.cli import load_config
from iaffinity_plugins.engine.checkpoint import load_checkpoint_strict
from iaffinity_plugins.engine.stage_benchmark import stage_weights
from iaffinity_plugins.engine.stage_runner import innermost_dataset
from iaffinity_plugins.evaluation.label_metrics import (confusion_matrix,
                                                        label_quality)
from iaffinity_plugins.labels.label_io import read_label
from iaffinity_plugins.labels.seeds import multi_scale_cam
from iaffinity_plugins.plugins import get_extension
from iaffinity_plugins.registry import DATASETS, MODELS

RULE_ARGS = dict(threshold=('fg_threshold', 'bg_threshold'),
                 psa=('alpha_strong_bg', 'alpha_weak_bg'),
                 otsu=('margin', ))


def parse_rule(text: str) -> dict:
    """'threshold:0.4:0.2' -> dict(type='threshold', fg_threshold=0.4, ...)."""
    name, *values = text.split(':')
    if name not in RULE_ARGS or len(values) != len(RULE_ARGS[name]):
        raise ValueError(f'rule {text!r}: use one of '
                         f"{[n + ':' + ':'.join(a) for n, a in RULE_ARGS.items()]}")
    return dict(type=name, **{key: float(value) for key, value in zip(
        RULE_ARGS[name], values)})


@torch.no_grad()
def all_cams(model, dataset, scales: Tuple[float, ...],
             cam_short_edge) -> List[Tuple[torch.Tensor, np.ndarray, np.ndarray]]:
    """(CAMs, tags, ground truth) of every image."""
    out = []
    for index in range(len(dataset)):
        item = dataset[index]
        meta = item['data_samples'].metainfo
        batch = model.data_preprocessor(
            dict(inputs=[item['inputs']], data_samples=[item['data_samples']]),
            False)
        cams = multi_scale_cam(model, batch['inputs'], meta['tags'], scales,
                               flip=True, cam_short_edge=cam_short_edge)
        gt = read_label(dataset.get_data_info(index)['gt_seg_map_path'])
        out.append((cams.half(), np.asarray(meta['tags']), gt))
    return out


def measure(cams, rule: dict, num_classes: int) -> Dict[str, float]:
    kwargs = dict(rule)
    seed_rule = get_extension('seed_generator', kwargs.pop('type'))
    confusion = sum(
        confusion_matrix(seed_rule(c.float(), tags, **kwargs), gt, num_classes)
        for c, tags, gt in cams)
    quality = label_quality(confusion)
    return dict(miou=quality['miou'], precision=quality['precision'],
                labelled=quality['labelled_fraction'],
                bg_iou=quality['per_class_iou'][0], **quality['errors'])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('work_dir')
    parser.add_argument('--scales', nargs='+', default=['1,0.5,1.5'])
    parser.add_argument('--rules', nargs='+', default=['threshold:0.4:0.2'])
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    parser.add_argument('--json', help='also write the rows here')
    args = parser.parse_args()
    init_default_scope('mmseg')
    cfg = load_config(args.config, args.cfg_options, args.work_dir, 'none')
    weights = stage_weights(args.work_dir, 'seeds/cam')
    model = MODELS.build(copy.deepcopy(cfg.train_cfg.cam.model))
    load_checkpoint_strict(model, weights)
    model.eval()
    dataset_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    innermost_dataset(dataset_cfg)['pipeline'] = [
        dict(type='LoadImageWithCheck'), dict(type='PackWSSSInputs')]
    dataset = DATASETS.build(dataset_cfg)
    num_classes = len(dataset.metainfo['classes'])
    cam_short_edge = cfg.train_cfg.get('seeds', {}).get('cam_short_edge')
    rows = []
    print('| scales | rule | mIoU | precision | labelled | bg IoU | bg as '
          'object | bg unknown | object as bg | wrong class | object '
          'unknown | object right |')
    print('|---|---|---|---|---|---|---|---|---|---|---|---|')
    for scales_text in args.scales:
        scales = tuple(float(s) for s in scales_text.split(','))
        cams = all_cams(model, dataset, scales, cam_short_edge)
        for rule_text in args.rules:
            row = measure(cams, parse_rule(rule_text), num_classes)
            rows.append(dict(scales=scales_text, rule=rule_text, **row))
            print(f"| {scales_text} | {rule_text} | {row['miou']:.1f} | "
                  f"{row['precision']:.1f} | {row['labelled']:.1f} | "
                  f"{row['bg_iou']:.1f} | " + ' | '.join(
                      f'{value:.1f}' for key, value in row.items()
                      if key not in ('miou', 'precision', 'labelled',
                                     'bg_iou')) + ' |', flush=True)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(rows, f, indent=2)


if __name__ == '__main__':
    main()
