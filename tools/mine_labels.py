"""Mine confident regions from any label folder (paper Sec. 3.3).

``python tools/mine_labels.py CONFIG --labels DIR --out DIR
[--checkpoint CKPT] [--mode relabel|confirm|majority|none] [--work-dir DIR]
[--keep-objects-from DIR] [--launcher none|pytorch|slurm|mpi]``

Usable on its own, e.g. to clean the pseudo labels of another WSSS method.
The modes that use the region classifier (``relabel``, the paper's rule,
and ``confirm``; ``labels/mining.py``) train it, without ``--checkpoint``, on
``--labels`` (an mmengine Runner from the config's ``model``,
``train_dataloader``, ``optim_wrapper``, ``param_scheduler``, ``train_cfg``,
through ``engine/stage_runner.py``: resumable, DDP with a launcher). With a
launcher (e.g. ``python -m torch.distributed.run --nproc_per_node N
tools/mine_labels.py ... --launcher pytorch``) each process mines every N-th
image.

CONFIG is either a region-classifier config (those keys at top level, plus
``superpixels`` and ``mining`` as in ``configs/_base_/models/
region_classifier.py``) or an EM config, whose ``train_cfg.confidence``,
``train_cfg.superpixels`` and ``train_cfg.mining`` are used.

Images already mined are skipped, so an interrupted run resumes;
``--out``'s ``options.json`` records what determines the labels (the input
folder, data set, superpixels, mode, ratio, threshold, kept objects and the
region classifier: its checkpoint, model and, when trained here, training
config), and an ``--out`` of other options is refused before anything
trains.
"""
import argparse
import copy
import os.path as osp
from typing import List, Optional, Tuple

import iaffinity_plugins  # noqa: F401  (before mmseg: compat + registration)
from mmengine.dist import is_main_process
from mmengine.registry import init_default_scope

from iaffinity_plugins.cli import (add_launcher_args, init_launcher,
                                   load_config, process_group_scope,
                                   summed_over_ranks)
from iaffinity_plugins.engine.checkpoint import load_checkpoint_strict
from iaffinity_plugins.engine.stage_configs import (run_superpixel_cache,
                                                    set_superpixels)
from iaffinity_plugins.engine.stage_runner import (FINAL_WEIGHTS,
                                                   innermost_dataset,
                                                   stage_pipeline,
                                                   train_stage)
from iaffinity_plugins.labels.label_writer import record_options
from iaffinity_plugins.labels.mining import (CLASSIFIER_MODES, MINING_MODES,
                                             check_mining_mode, mine_labels)
from iaffinity_plugins.registry import DATASETS, MODELS

STAGE_KEYS = ('model', 'train_dataloader', 'optim_wrapper', 'param_scheduler',
              'train_cfg')
# Mining needs the original image only (superpixels come from the cache).
DEFAULT_MINE_PIPELINE = [dict(type='LoadImageWithCheck'),
                         dict(type='PackWSSSInputs')]


def mining_settings(cfg) -> Tuple[dict, dict, dict]:
    """``(stage config, superpixels, mining)`` of a classifier or EM config."""
    nested = cfg.get('train_cfg', {}).get('confidence')
    if nested is not None:
        loop = cfg.train_cfg
        return (copy.deepcopy(nested), dict(loop.get('superpixels') or {}),
                dict(loop.get('mining', {})))
    missing = [key for key in STAGE_KEYS if key not in cfg]
    if missing:
        raise KeyError(f'{cfg.filename} has neither train_cfg.confidence nor '
                       f'the top-level keys {missing}')
    return ({key: copy.deepcopy(cfg[key]) for key in STAGE_KEYS},
            dict(cfg.get('superpixels') or {}), dict(cfg.get('mining', {})))


def with_superpixels(stage_cfg: dict, work_dir: str, superpixels: dict
                     ) -> dict:
    """The stage config with ``LoadSuperpixels`` reading the run's cache.

    Added right after the image loader when the pipeline lacks it, so any
    segmentation training config can train the classifier.
    """
    pipeline = stage_pipeline(stage_cfg)
    if not any(t.get('type') == 'LoadSuperpixels' for t in pipeline):
        pipeline.insert(1, dict(type='LoadSuperpixels'))
    set_superpixels(stage_cfg, work_dir, superpixels)
    return stage_cfg


def mine_dataset_cfg(cfg, stage_cfg: dict) -> dict:
    """The images to mine, through the config's ``infer_pipeline`` (default
    :data:`DEFAULT_MINE_PIPELINE`), without labels: the stage's own
    dataloader's, or (EM configs) the run's training images."""
    dataloader = stage_cfg.get('train_dataloader', cfg.get('train_dataloader'))
    dataset_cfg = copy.deepcopy(innermost_dataset(dataloader['dataset']))
    dataset_cfg.update(pipeline=cfg.get('infer_pipeline',
                                        DEFAULT_MINE_PIPELINE),
                       label_dir=None)
    return dataset_cfg


@process_group_scope()
def main(argv: Optional[List[str]] = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='region classifier or EM config')
    parser.add_argument('--labels', required=True, help='input label folder')
    parser.add_argument('--out', required=True, help='mined label folder')
    parser.add_argument('--checkpoint', help='trained region classifier; '
                        'trained on --labels when omitted')
    parser.add_argument('--mode', choices=MINING_MODES,
                        help="default: the config's mining.mode")
    parser.add_argument('--work-dir', help='classifier logs, checkpoints and '
                        'the superpixel cache')
    parser.add_argument('--keep-objects-from', help="the previous step's "
                        'mined folder: its objects stay where the new labels '
                        'have background or unknown (mining.keep_objects)')
    add_launcher_args(parser)
    args = parser.parse_args(argv)
    # Pipelines name mmseg's and our transforms without a scope prefix;
    # load_config already builds the data set (to fill num_classes).
    init_default_scope('mmseg')
    cfg = load_config(args.config, None, args.work_dir, args.launcher)
    init_launcher(cfg, args.local_rank)
    stage_cfg, superpixels, mining = mining_settings(cfg)
    mode = args.mode or mining.get('mode', 'relabel')
    check_mining_mode(mode, 'mining.mode')
    ratio, threshold = mining.get('ratio', 0.8), mining.get('threshold', 0.7)
    short_edge = cfg.train_cfg.get('infer_short_edge')
    confidence_dir = osp.join(cfg.work_dir, 'confidence')
    checkpoint = args.checkpoint or osp.join(confidence_dir, FINAL_WEIGHTS)
    training = None
    if mode in CLASSIFIER_MODES and args.checkpoint is None:
        training = with_superpixels(stage_cfg, cfg.work_dir, superpixels)
    dataset_cfg = mine_dataset_cfg(cfg, stage_cfg)
    classifier = dict(model=stage_cfg['model'],
                      checkpoint=osp.abspath(checkpoint), training=training)
    record_options(args.out, dict(
        labels=osp.abspath(args.labels), dataset=dataset_cfg,
        superpixels=superpixels, mode=mode, ratio=ratio, threshold=threshold,
        # Recorded when set: folders mined before the option resume.
        **({} if short_edge is None else dict(short_edge=short_edge)),
        keep_objects_from=(osp.abspath(args.keep_objects_from)
                           if args.keep_objects_from else None),
        classifier=classifier if mode in CLASSIFIER_MODES else None))
    if training is not None:
        train_stage(training, cfg, confidence_dir, 'confidence', args.labels)
    model = None
    if mode in CLASSIFIER_MODES:
        model = MODELS.build(stage_cfg['model'])
        load_checkpoint_strict(model, checkpoint)
    summary = summed_over_ranks(mine_labels(
        model, DATASETS.build(dataset_cfg), args.labels, args.out,
        run_superpixel_cache(cfg.work_dir, superpixels), ratio=ratio,
        threshold=threshold, mode=mode,
        keep_objects_from=args.keep_objects_from, short_edge=short_edge))
    if is_main_process():
        print(f"mined {summary['images']} images ({summary['skipped']} "
              f"already there): {summary['regions_kept']} of "
              f"{summary['regions_scored']} scored regions kept")
        if summary['empty_images']:
            print(f"{len(summary['empty_images'])} images without any "
                  f"confident region: {summary['empty_images'][:10]}")
    return summary


if __name__ == '__main__':
    main()
