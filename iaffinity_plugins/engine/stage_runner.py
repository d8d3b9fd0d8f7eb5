"""Train one network of the EM loop with an ordinary mmengine Runner.

Each stage (CAM classifier, unary, pairwise, region confidence) is a full
mmengine runner sub-config (``model``, ``train_dataloader``, ``optim_wrapper``,
``param_scheduler``, ``train_cfg``); the EM loop adds the runtime settings of
the outer run, the stage's work dir and the label folder it trains on. A
stage that was killed mid-training resumes from its last checkpoint.
"""
import copy
import io
import os
import os.path as osp
from typing import Any, Optional

import torch
from mmengine.config import Config
from mmengine.runner import Runner, find_latest_checkpoint

from ..labels.label_io import atomic_write_bytes

# Outer-run settings every stage runner inherits.
RUNTIME_KEYS = ('default_scope', 'env_cfg', 'log_processor', 'log_level',
                'randomness', 'launcher', 'default_hooks', 'custom_hooks')
# Hooks that need a val loop or a visualiser of their own: stages have none.
STAGE_FREE_HOOKS = ('visualization', )
FINAL_WEIGHTS = 'final_weights.pth'


def set_pipeline_option(dataset_cfg: dict, transform_type: str,
                        **options: Any) -> None:
    """Set ``options`` on every ``transform_type`` step of a dataset config.

    Args:
        dataset_cfg (dict): A dataset config with a ``pipeline`` list
            (wrappers with a nested ``dataset`` are followed).
        transform_type (str): The ``type`` of the transforms to update.
    """
    while 'pipeline' not in dataset_cfg and 'dataset' in dataset_cfg:
        dataset_cfg = dataset_cfg['dataset']
    for transform in dataset_cfg.get('pipeline', []):
        if transform.get('type') == transform_type:
            transform.update(options)


def innermost_dataset(dataset_cfg: dict) -> dict:
    """The dataset config inside wrappers such as ``RepeatDataset``."""
    while 'dataset' in dataset_cfg:
        dataset_cfg = dataset_cfg['dataset']
    return dataset_cfg


def build_stage_runner_cfg(stage_cfg: dict, runtime_cfg: dict, work_dir: str,
                           name: str, label_dir: Optional[str]) -> Config:
    """The full runner config of one stage.

    Args:
        stage_cfg (dict): The stage's ``model``, ``train_dataloader``,
            ``optim_wrapper``, ``param_scheduler`` and ``train_cfg``.
        runtime_cfg (dict): The outer config (only :data:`RUNTIME_KEYS` are
            taken from it).
        work_dir (str): The stage's work dir.
        name (str): Stage name, unique per run (names loggers/visualisers).
        label_dir (str, optional): Label folder the stage trains on.
    """
    cfg = {key: copy.deepcopy(runtime_cfg[key])
           for key in RUNTIME_KEYS if key in runtime_cfg}
    hooks = cfg.get('default_hooks', {})
    for hook in STAGE_FREE_HOOKS:
        hooks.pop(hook, None)
    cfg.update(copy.deepcopy(stage_cfg))
    if label_dir is not None:
        innermost_dataset(cfg['train_dataloader']['dataset'])[
            'label_dir'] = label_dir
    cfg.update(work_dir=work_dir, experiment_name=name.replace('/', '_'),
               resume=find_latest_checkpoint(work_dir) is not None)
    return Config(cfg)


def train_stage(stage_cfg: dict, runtime_cfg: dict, work_dir: str, name: str,
                label_dir: Optional[str] = None) -> str:
    """Train a stage's network; returns the path of its final weights.

    The weights (``state_dict`` only, under ``state_dict`` like mmengine's
    checkpoints) are written atomically to ``work_dir/final_weights.pth``
    after training, so their presence means the stage finished.
    """
    os.makedirs(work_dir, exist_ok=True)
    cfg = build_stage_runner_cfg(stage_cfg, runtime_cfg, work_dir, name,
                                 label_dir)
    runner = Runner.from_cfg(cfg)
    runner.train()
    model = runner.model.module if hasattr(runner.model,
                                           'module') else runner.model
    weights_path = osp.join(work_dir, FINAL_WEIGHTS)
    if runner.rank == 0:
        buffer = io.BytesIO()
        torch.save({'state_dict': model.state_dict(),
                    'meta': {'stage': name, 'iter': runner.iter}}, buffer)
        atomic_write_bytes(weights_path, buffer.getvalue())
    return weights_path
