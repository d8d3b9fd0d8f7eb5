"""Command-line entry points (``tools/train.py``, ``iaffinity-train``).

``train`` is mmseg's ``tools/train.py`` with two additions for EM configs:
``--cfg-options data_root=PATH`` re-points every data set of the config
(stages included), and ``--amp`` switches every stage's optimiser wrapper.
``train`` and ``test`` wrap the model for DDP as the EM stages do
(:func:`set_model_wrapper`), so that they also run with a launcher on CPU.

The label-writing tools (``tools/make_seeds.py``, ``tools/mine_labels.py``)
share the ``--launcher`` set-up here (:func:`add_launcher_args`,
:func:`init_launcher`) and merge their per-rank summaries with
:func:`summed_over_ranks`. Every tool runs its work inside
:func:`process_group_scope`, which destroys the process group it started.
"""
import argparse
import gc
import os
import os.path as osp
from contextlib import contextmanager
from functools import lru_cache, partial
from typing import Any, Callable, Dict, Iterator, List, Optional

import torch.distributed as torch_dist
from mmengine.config import Config, DictAction
from mmengine.dist import all_gather_object, init_dist, is_distributed

LAUNCHERS = ('none', 'pytorch', 'slurm', 'mpi')


def config_dicts(node: Any) -> Iterator[dict]:
    """Every dict of a config tree (plain dicts and lists), outermost first."""
    if isinstance(node, dict):
        yield node
        for value in list(node.values()):
            yield from config_dicts(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from config_dicts(value)


def replace_data_root(node: Any, old: str, new: str) -> Any:
    """Replace ``old`` by ``new`` in every ``data_root`` value of ``node``.

    mmengine expands ``data_root`` into each data set dict when the config
    file is read, so overriding the top-level key alone would not reach the
    data sets of the EM stages.
    """
    for cfg in config_dicts(node):
        if cfg.get('data_root') == old:
            cfg['data_root'] = new
    return node


def enable_amp(node: Any) -> None:
    """Turn every ``OptimWrapper`` of the config into an ``AmpOptimWrapper``."""
    for cfg in config_dicts(node):
        if cfg.get('type') == 'OptimWrapper':
            cfg.update(type='AmpOptimWrapper', loss_scale='dynamic')


def fill_num_classes(node: Any, num_classes: Callable[[], int]) -> None:
    """Set every ``num_classes=None`` of the config from the data.

    iaffinity configs leave ``num_classes`` as None so that one config serves
    any class list: heads and region classifiers get K (background
    included), a ``CAMClassifier`` gets K-1 (foreground only).

    Args:
        node: The config as plain dicts and lists, changed in place.
        num_classes: Returns K; called only when a None is found.
    """
    for cfg in config_dicts(node):
        if 'num_classes' in cfg and cfg['num_classes'] is None:
            foreground_only = cfg.get('type') == 'CAMClassifier'
            cfg['num_classes'] = num_classes() - int(foreground_only)


def num_classes_of(dataset_cfg: dict) -> int:
    """K, the class count of a data set config (background included)."""
    from mmengine.registry import DefaultScope
    from mmseg.registry import DATASETS
    with DefaultScope.overwrite_default_scope('mmseg'):
        return len(DATASETS.build(dataset_cfg).metainfo['classes'])


def load_config(config: str, cfg_options: Optional[dict],
                work_dir: Optional[str], launcher: str) -> Config:
    """Read a config and apply the command-line overrides."""
    if not osp.isfile(config):
        raise FileNotFoundError(f'config file {config} does not exist')
    # Unformatted: yapf takes seconds per config text, and mmengine writes
    # one per dump, run start and checkpoint (a minute in a short run).
    cfg = Config.fromfile(config, format_python_code=False)
    cfg.launcher = launcher
    if cfg_options:
        old_root = cfg.get('data_root')
        cfg.merge_from_dict(cfg_options)
        if 'data_root' in cfg_options and old_root is not None:
            cfg_dict = cfg.to_dict()
            replace_data_root(cfg_dict, old_root, cfg_options['data_root'])
            cfg = Config(cfg_dict, filename=config, format_python_code=False)
    if 'train_dataloader' in cfg:
        cfg_dict = cfg.to_dict()
        fill_num_classes(cfg_dict, lru_cache(maxsize=1)(
            partial(num_classes_of, cfg_dict['train_dataloader']['dataset'])))
        cfg = Config(cfg_dict, filename=config, format_python_code=False)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config))[0])
    return cfg


def add_launcher_args(parser: argparse.ArgumentParser) -> None:
    """Add ``--launcher`` and ``--local_rank`` (set by older launchers)."""
    parser.add_argument('--launcher', default='none', choices=LAUNCHERS,
                        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def init_launcher(cfg: Config, local_rank: int = 0) -> None:
    """Start this process's distributed group for a label-writing tool.

    With ``cfg.launcher == 'none'`` (or a group already started) nothing
    happens. Otherwise mmengine's ``init_dist`` runs with the config's
    ``env_cfg.dist_cfg`` (gloo on machines without CUDA, see
    :mod:`iaffinity_plugins.compat`), so that the label writers shard the
    images across ranks and stage runners (``engine/stage_runner.py``)
    train with DDP in the same group.

    Args:
        cfg (Config): The tool's config, its ``launcher`` set by
            :func:`load_config`.
        local_rank (int): ``--local_rank`` of launchers that pass it as an
            argument instead of the ``LOCAL_RANK`` variable.

    Call it inside :func:`process_group_scope`, which destroys the group.
    """
    os.environ.setdefault('LOCAL_RANK', str(local_rank))
    if cfg.launcher == 'none' or is_distributed():
        return
    init_dist(cfg.launcher, **cfg.get('env_cfg', {}).get('dist_cfg', {}))


def _group_started() -> bool:
    return torch_dist.is_available() and torch_dist.is_initialized()


@contextmanager
def process_group_scope() -> Iterator[None]:
    """Destroy, on leaving the block, the process group started inside it.

    Also on error; usable as a decorator (``@process_group_scope()``) of a
    tool's ``main``. A group left to the interpreter's exit keeps the
    backend's C++ threads alive while the process tears down: a finished
    2-process run could die with "terminate called without an active
    exception" (SIGABRT). ``destroy_process_group`` alone does not free the
    group while a DDP wrapper still holds it, and the runners that own the
    wrappers live in reference cycles until a garbage collection: so the
    ranks first meet at a barrier (on a clean exit only: after an error
    another rank may never come), then garbage is collected, then the
    group is destroyed, while the interpreter is still whole (also when the
    barrier fails because a peer died; after an error the traceback may
    still hold a runner, which then outlives the collection). A group that
    already existed when the block was entered (e.g. a caller's) is left as
    it is.
    """
    started_before = _group_started()
    clean_exit = False
    try:
        yield
        clean_exit = True
    finally:
        if not started_before and _group_started():
            try:
                if clean_exit:
                    torch_dist.barrier()
            finally:
                gc.collect()
                torch_dist.destroy_process_group()


def summed_over_ranks(summary: Dict[str, Any]) -> Dict[str, Any]:
    """A label writer's summary merged over all ranks.

    Each rank writes (and counts) only its shard of the images: numbers are
    added and lists concatenated in rank order. Without a process group the
    summary is returned as it is.
    """
    if not is_distributed():
        return summary
    merged: Dict[str, Any] = {}
    for part in all_gather_object(summary):
        for key, value in part.items():
            merged[key] = merged[key] + value if key in merged else value
    return merged


def set_model_wrapper(cfg: Config) -> None:
    """Give ``cfg`` the stages' DDP wrapper unless it names its own.

    mmengine's default passes the local rank as ``device_ids``, which DDP
    refuses for a CPU model: a ``--launcher`` run of ``train`` or ``test``
    on CPU would fail building its runner (see
    :func:`~iaffinity_plugins.engine.stage_runner.model_wrapper_cfg`).
    """
    if 'model_wrapper_cfg' not in cfg:
        from .engine.stage_runner import model_wrapper_cfg
        cfg.model_wrapper_cfg = model_wrapper_cfg()


def _parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('config', help='config file path')
    parser.add_argument('--work-dir', help='where to save logs and models')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    add_launcher_args(parser)
    return parser


@process_group_scope()
def train(argv: Optional[List[str]] = None) -> None:
    """Run a config's training: the whole EM loop for iaffinity configs.

    With a launcher the runner starts the process group, destroyed when
    training returns or fails; the EM loop records each stage in
    ``manifest.json`` when the stage ends, so a finished stage is on disk
    before the group is torn down.
    """
    parser = _parser('Train a segmentor (the EM loop for iaffinity configs)')
    parser.add_argument('--resume', action='store_true',
                        help='resume: finished EM stages are always skipped '
                        '(manifest.json); this also resumes plain mmseg runs '
                        'from their latest checkpoint')
    parser.add_argument('--amp', action='store_true',
                        help='automatic mixed precision in every stage')
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))

    import iaffinity_plugins  # noqa: F401  (registers, installs compat)
    from mmengine.runner import Runner
    from mmseg.registry import RUNNERS

    cfg = load_config(args.config, args.cfg_options, args.work_dir,
                      args.launcher)
    if args.amp:
        enable_amp(cfg._cfg_dict)
    set_model_wrapper(cfg)
    cfg.resume = args.resume
    runner = (RUNNERS.build(cfg) if 'runner_type' in cfg
              else Runner.from_cfg(cfg))
    runner.train()


@process_group_scope()
def test(argv: Optional[List[str]] = None) -> None:
    """Evaluate a checkpoint on the config's test set (mmseg-style)."""
    parser = _parser('Test (and evaluate) a segmentor checkpoint')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', help='folder for the predicted label maps')
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))

    import iaffinity_plugins  # noqa: F401
    from mmengine.runner import Runner

    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint {args.checkpoint} does not exist')
    cfg = load_config(args.config, args.cfg_options, args.work_dir,
                      args.launcher)
    cfg.load_from = args.checkpoint
    set_model_wrapper(cfg)
    if args.out is not None:
        cfg.test_evaluator['output_dir'] = args.out
        cfg.test_evaluator['keep_results'] = True
    # An EM config's train loop is not needed to test its unary net.
    for key in ('train_cfg', 'train_dataloader', 'optim_wrapper',
                'param_scheduler'):
        cfg.pop(key, None)
    Runner.from_cfg(cfg).test()

