"""Train one network of the EM loop with an ordinary mmengine Runner.

Each stage (CAM classifier, unary, pairwise, region confidence) is a full
mmengine runner sub-config (``model``, ``train_dataloader``, ``optim_wrapper``,
``param_scheduler``, ``train_cfg``); the EM loop adds the runtime settings of
the outer run, the stage's work dir and the label folder it trains on. A
stage that was killed mid-training resumes from its last checkpoint, torch's
random state included (``rng_state.py``). Its runner logs everything to
its own folder; the console shows a progress bar (``engine/console.py``).
"""
import copy
import io
import os
import os.path as osp
import re
import zipfile
from typing import Any, Optional

import torch
from mmengine.config import Config
from mmengine.dist import barrier, is_main_process
from mmengine.runner import find_latest_checkpoint

from ..labels.label_io import atomic_write_bytes
from .console import QuietConsoleRunner
from .manifest import config_hash
from .rng_state import TorchRNGStateHook

# Outer-run settings every stage runner inherits.
RUNTIME_KEYS = ('default_scope', 'env_cfg', 'log_processor', 'log_level',
                'randomness', 'launcher', 'default_hooks', 'custom_hooks')
# Hooks that need a val loop or a visualiser of their own: stages have none.
STAGE_FREE_HOOKS = ('visualization', )
FINAL_WEIGHTS = 'final_weights.pth'
# The hash of the config a stage folder's checkpoints were trained with.
CHECKPOINT_CONFIG = 'checkpoint_config_hash'
STALE_CHECKPOINTS = 'stale_checkpoints'
# Stage keys that describe its dataloader rather than the runner.
STAGE_DATA_KEYS = ('pipeline', 'batch_size', 'num_workers')


def model_wrapper_cfg() -> dict:
    """How distributed runs wrap a model in DDP.

    CPU modules take no ``device_ids`` (mmengine passes the local rank,
    which DDP rejects for CPU modules), and unused parameters are allowed: a
    region-classifier batch may hold no labelled region.
    """
    cfg = dict(type='MMDistributedDataParallel', broadcast_buffers=False,
               find_unused_parameters=True)
    if not torch.cuda.is_available():
        cfg['device_ids'] = None
    return cfg


def stage_pipeline(stage_cfg: dict) -> list:
    """The training pipeline of a stage config (either form)."""
    if 'pipeline' in stage_cfg:
        return stage_cfg['pipeline']
    return innermost_dataset(stage_cfg['train_dataloader']['dataset'])[
        'pipeline']


def set_transform_options(pipeline: list, transform_type: str,
                          **options: Any) -> None:
    """Set ``options`` on every ``transform_type`` step of ``pipeline``."""
    for transform in pipeline:
        if transform.get('type') == transform_type:
            transform.update(options)


def innermost_dataset(dataset_cfg: dict) -> dict:
    """The dataset config inside wrappers such as ``RepeatDataset``."""
    while 'dataset' in dataset_cfg:
        dataset_cfg = dataset_cfg['dataset']
    return dataset_cfg


def stage_dataloader(stage_cfg: dict, dataset_cfg: dict) -> dict:
    """A stage's training dataloader over the run's training images.

    Args:
        stage_cfg (dict): The stage config: its ``pipeline`` and optional
            ``batch_size`` (8) and ``num_workers`` (2).
        dataset_cfg (dict): The run's training image set (the outer
            ``train_dataloader.dataset``); its pipeline is replaced.
    """
    return dict(
        batch_size=stage_cfg.get('batch_size', 8),
        num_workers=stage_cfg.get('num_workers', 2),
        persistent_workers=False,
        sampler=dict(type='InfiniteSampler', shuffle=True),
        dataset=dict(copy.deepcopy(dataset_cfg),
                     pipeline=copy.deepcopy(stage_cfg['pipeline'])))


def is_complete_checkpoint(path: str) -> bool:
    """Whether a ``torch.save`` file was written to the end.

    torch saves a zip archive whose central directory comes last, so a file
    cut short by a kill does not open as a zip.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            return bool(archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def resumable_checkpoint(work_dir: str) -> Optional[str]:
    """The newest complete checkpoint of a stage, or None.

    mmengine's ``CheckpointHook`` removes the oldest kept checkpoint
    *before* it writes the new one and updates ``last_checkpoint`` after
    it, and its writes are not atomic. A run killed inside that sequence can
    leave ``last_checkpoint`` naming a removed file and the newest
    ``iter_*.pth`` half written. So the checkpoint ``last_checkpoint`` names
    is used when it exists and is complete, else the newest complete
    ``iter_*.pth``; a truncated file is never resumed from.
    """
    if not osp.isdir(work_dir):
        return None
    iters = sorted((int(name[5:-4]) for name in os.listdir(work_dir)
                    if re.fullmatch(r'iter_\d+\.pth', name)), reverse=True)
    # find_latest_checkpoint prints a line when there is none to find.
    named = find_latest_checkpoint(work_dir) if osp.isfile(
        osp.join(work_dir, 'last_checkpoint')) else None
    candidates = [named] + [
        osp.join(work_dir, f'iter_{i}.pth') for i in iters]
    return next((path for path in candidates if path is not None
                 and osp.isfile(path) and is_complete_checkpoint(path)), None)


def set_aside_stale_checkpoints(work_dir: str, stage_hash: str) -> None:
    """Move the checkpoints of another config out of a stage's way.

    A stage re-run after its config changed (its manifest entries deleted,
    as ``StageConfigChanged`` says) must train again, not resume from the
    old config's ``last_checkpoint``. ``work_dir/checkpoint_config_hash``
    names the config its checkpoints belong to; when it is absent or names
    another, ``last_checkpoint`` and ``iter_*.pth`` go to
    ``work_dir/stale_checkpoints/<old hash>/`` (kept, not deleted).
    ``stage_hash``: :func:`train_stage`'s ``config_id`` (or its default).
    """
    os.makedirs(work_dir, exist_ok=True)
    marker = osp.join(work_dir, CHECKPOINT_CONFIG)
    old_hash = None
    if osp.isfile(marker):
        with open(marker) as f:
            old_hash = f.read().strip()
    if old_hash == stage_hash:
        return
    stale = [name for name in os.listdir(work_dir)
             if name == 'last_checkpoint'
             or re.fullmatch(r'iter_\d+\.pth', name)]
    if stale:
        dest = osp.join(work_dir, STALE_CHECKPOINTS, old_hash or 'unknown')
        os.makedirs(dest, exist_ok=True)
        for name in stale:
            os.replace(osp.join(work_dir, name), osp.join(dest, name))
    atomic_write_bytes(marker, stage_hash.encode())


def build_stage_runner_cfg(stage_cfg: dict, runtime_cfg: dict, work_dir: str,
                           name: str, label_dir: Optional[str],
                           init_weights: Optional[str] = None) -> Config:
    """The full runner config of one stage.

    Args:
        stage_cfg (dict): The stage's ``model``, ``optim_wrapper``,
            ``param_scheduler``, ``train_cfg`` and either a
            ``train_dataloader`` or the ``pipeline`` (and ``batch_size``,
            ``num_workers``) of a dataloader over the run's training images.
        runtime_cfg (dict): The outer config (:data:`RUNTIME_KEYS` and
            ``train_dataloader.dataset`` are taken from it).
        work_dir (str): The stage's work dir.
        name (str): Stage name, unique per run (names loggers/visualisers).
        label_dir (str, optional): Label folder the stage trains on.
        init_weights (str, optional): Weights the network starts from
            (mmengine's ``load_from`` without resuming) when the stage has
            no checkpoint of its own to resume from.
    """
    cfg = {key: copy.deepcopy(runtime_cfg[key])
           for key in RUNTIME_KEYS if key in runtime_cfg}
    hooks = cfg.get('default_hooks', {})
    for hook in STAGE_FREE_HOOKS:
        hooks.pop(hook, None)
    stage_cfg = copy.deepcopy(stage_cfg)
    if 'train_dataloader' not in stage_cfg:
        stage_cfg['train_dataloader'] = stage_dataloader(
            stage_cfg, runtime_cfg['train_dataloader']['dataset'])
    for key in STAGE_DATA_KEYS:
        stage_cfg.pop(key, None)
    cfg.update(stage_cfg)
    if label_dir is not None:
        innermost_dataset(cfg['train_dataloader']['dataset'])[
            'label_dir'] = label_dir
    cfg.setdefault('model_wrapper_cfg', model_wrapper_cfg())
    # TorchRNGStateHook: a resumed training draws the dropout masks an
    # uninterrupted one would.
    cfg['custom_hooks'] = [*cfg.get('custom_hooks', []),
                           dict(type='TrainProgressHook', desc=name),
                           dict(type=TorchRNGStateHook.__name__)]
    checkpoint_hook = cfg.get('default_hooks', {}).get('checkpoint') or {}
    if 0 < checkpoint_hook.get('max_keep_ckpts', -1) < 2:
        # One kept checkpoint is removed before the next is written: a kill
        # during that save would leave nothing to resume from.
        checkpoint_hook['max_keep_ckpts'] = 2
    checkpoint = resumable_checkpoint(work_dir)
    cfg.update(work_dir=work_dir, experiment_name=name.replace('/', '_'),
               resume=checkpoint is not None,
               load_from=checkpoint or init_weights)
    # mmengine formats the config text (yapf, seconds a time) at the start
    # and at every checkpoint: left unformatted, it is still valid Python.
    return Config(cfg, format_python_code=False)


def train_stage(stage_cfg: dict, runtime_cfg: dict, work_dir: str, name: str,
                label_dir: Optional[str] = None,
                config_id: Optional[str] = None,
                init_weights: Optional[str] = None) -> str:
    """Train a stage's network; returns the path of its final weights.

    The weights (``state_dict`` only, under ``state_dict`` like mmengine's
    checkpoints) are written atomically to ``work_dir/final_weights.pth``
    after training, so their presence means the stage finished. Rank 0
    writes them; in a distributed run every rank returns only once they
    exist, so any rank may load them next. ``config_id`` marks the
    checkpoints (:func:`set_aside_stale_checkpoints`): the EM loop passes
    its manifest hash of the stage; by default the hash of ``stage_cfg``
    and ``label_dir``. ``init_weights``: weights a fresh (not resumed)
    training starts from.
    """
    if is_main_process():
        set_aside_stale_checkpoints(
            work_dir, config_id or config_hash(stage_cfg, label_dir))
    barrier()
    cfg = build_stage_runner_cfg(stage_cfg, runtime_cfg, work_dir, name,
                                 label_dir, init_weights)
    runner = QuietConsoleRunner.from_cfg(cfg)
    runner.train()
    model = runner.model.module if hasattr(runner.model,
                                           'module') else runner.model
    weights_path = osp.join(work_dir, FINAL_WEIGHTS)
    if runner.rank == 0:
        buffer = io.BytesIO()
        torch.save({'state_dict': model.state_dict(),
                    'meta': {'stage': name, 'iter': runner.iter}}, buffer)
        atomic_write_bytes(weights_path, buffer.getvalue())
    barrier()
    return weights_path
