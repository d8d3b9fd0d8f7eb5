"""Write seed labels Y0 from a trained CAM classifier.

``python tools/make_seeds.py CONFIG CHECKPOINT --out DIR [--cam-dir DIR]
[--cfg-options KEY=VALUE ...] [--launcher none|pytorch|slurm|mpi]``

CONFIG holds ``model`` (a CAMClassifier), ``seed_cfg`` (``type`` =
'threshold' / 'psa' / a plugin's rule, plus its thresholds), ``cam_cfg``
(``scales``, ``flip``) and the data set: ``infer_dataloader.dataset`` or else
``train_dataloader.dataset``, run through ``infer_pipeline`` when the config
has one. Writes ``DIR/<img_id>.png`` (VOC palette, 255 = unknown) and, with
``--cam-dir``, float16 CAMs ``<img_id>.npy``. Images already written are
skipped, so an interrupted run resumes; ``DIR/options.json`` records what
determines the seeds (:func:`seed_options`), and a DIR of other options is
refused. With a launcher (e.g. torchrun ``python -m
torch.distributed.run --nproc_per_node N tools/make_seeds.py ... --launcher
pytorch``) each process writes every N-th image.
"""
import argparse
import copy
import os.path as osp
from typing import List, Optional

import iaffinity_plugins  # noqa: F401  (before mmseg: compat + registration)
from mmengine.config import Config, DictAction
from mmengine.dist import is_main_process
from mmengine.registry import init_default_scope

from iaffinity_plugins.cli import (add_launcher_args, init_launcher,
                                   load_config, process_group_scope,
                                   summed_over_ranks)
from iaffinity_plugins.engine.checkpoint import load_checkpoint_strict
from iaffinity_plugins.engine.stage_runner import innermost_dataset
from iaffinity_plugins.labels.label_writer import record_options
from iaffinity_plugins.labels.seeds import write_seeds
from iaffinity_plugins.registry import DATASETS, MODELS


def infer_dataset_cfg(cfg: Config) -> dict:
    """The data set to label: ``infer_dataloader`` or ``train_dataloader``'s,
    with the config's ``infer_pipeline`` (images only, no augmentation)."""
    loader_key = ('infer_dataloader'
                  if 'infer_dataloader' in cfg else 'train_dataloader')
    if loader_key not in cfg:
        raise KeyError(f'{cfg.filename} has neither infer_dataloader nor '
                       'train_dataloader')
    dataset_cfg = copy.deepcopy(cfg[loader_key]['dataset'])
    if 'infer_pipeline' in cfg:
        innermost_dataset(dataset_cfg)['pipeline'] = cfg.infer_pipeline
    return dataset_cfg


def seed_options(cfg: Config, checkpoint: str, dataset_cfg: dict) -> dict:
    """What determines the seeds (``DIR/options.json``): the classifier and
    its weights, the seed rule, the CAM options and the data set."""
    return dict(checkpoint=osp.abspath(checkpoint), model=cfg.model,
                seed_cfg=cfg.seed_cfg, cam_cfg=cfg.get('cam_cfg', {}),
                dataset=dataset_cfg)


@process_group_scope()
def main(argv: Optional[List[str]] = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='config with a CAMClassifier model')
    parser.add_argument('checkpoint', help='trained CAM classifier weights')
    parser.add_argument('--out', required=True, help='seed label folder')
    parser.add_argument('--cam-dir', help='also save float16 CAMs here')
    parser.add_argument('--device', default='cpu',
                        help="e.g. 'cuda': with a launcher, each process's "
                        'own GPU')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys, e.g. seed_cfg.type=psa')
    add_launcher_args(parser)
    args = parser.parse_args(argv)

    # Pipelines name our transforms without a scope prefix; load_config
    # builds the data set to fill num_classes=None from it.
    init_default_scope('mmseg')
    cfg = load_config(args.config, args.cfg_options, None, args.launcher)
    init_launcher(cfg, args.local_rank)
    for key in ('model', 'seed_cfg'):
        if key not in cfg:
            raise KeyError(f'{args.config} has no {key!r}')
    model = MODELS.build(cfg.model)
    load_checkpoint_strict(model, args.checkpoint)
    model.to(args.device)
    dataset_cfg = infer_dataset_cfg(cfg)
    dataset = DATASETS.build(dataset_cfg)
    record_options(args.out, seed_options(cfg, args.checkpoint, dataset_cfg))
    summary = summed_over_ranks(write_seeds(
        model, dataset, args.out, dict(cfg.seed_cfg), cam_dir=args.cam_dir,
        **dict(cfg.get('cam_cfg', {}))))
    if is_main_process():
        print(f"seeds: {summary['written']} written, {summary['skipped']} "
              f"already there, {summary['empty_tags']} without tags "
              f'(all background), in {args.out}')
    return summary


if __name__ == '__main__':
    main()
