"""Seconds per training iteration of the EM loop's stages, and where they go.

Run from the repository root (CONFIG: an EM config, WORK_DIR: its run)::

    python tools/benchmarks/stage_step.py CONFIG WORK_DIR
        [--stages cam unary pairwise confidence] [--step T] [--iters 20]
        [--warmup 3] [--threads N] [--cfg-options KEY=VALUE ...]

e.g. ``configs/iaffinity/photo_demo.py work_dirs/photo_demo --stages unary
--cfg-options train_cfg.unary.num_workers=0`` (issue 23: is the unary step
within 1.3x of its network's own forward and backward?).

Each stage (``train_cfg.cam`` / ``unary`` / ``pairwise`` / ``confidence``
of CONFIG with ``--cfg-options``; default: every one the config has) is
built as the EM loop builds it at step T (``build_stage_runner_cfg``): its
runner, dataloader (pipeline, batch size, ``num_workers``), data
preprocessor, optimiser and hooks, on the labels the loop trains it on
(the CAM classifier on the image tags; f_T on the seeds at T = 0, after it
on step T-1's refined or mined labels; the region classifier on f_T's
output ``step_T/unary_labels``; g_T, holding the run's f_T, on Y_T
``step_T/labels``). The unary, pairwise and region stages need those
stages of WORK_DIR done (its ``manifest.json``); the CAM stage only the
images. Nothing of the run is changed: every runner trains ``--warmup`` +
``--iters`` + 1 iterations in a temporary folder under
``WORK_DIR/benchmarks/stage_step/``, removed afterwards.

Measured per stage, in seconds per iteration, warm-up iterations excluded:

- step: the stage's real training iteration as the loop runs it,
  ``IterBasedTrainLoop``'s: fetching the batch from the dataloader (with
  the stage's ``num_workers``), ``model.train_step`` (data preprocessor,
  forward, loss, backward, optimiser step) and the iteration's hooks. Timed
  from the end of the last warm-up iteration to the end of the last timed
  one; the extra last iteration, whose hooks save the final checkpoint, is
  not timed.
- data wait: of the step, the time between one iteration's hooks and the
  next one's ``train_step``: what the loop waits for its next batch.
- the same two with ``num_workers=0``: the batches loaded in the training
  process, so the data wait is the pipeline's own time.
- preprocessor: the data preprocessor on one fixed batch.
- bare net: the network alone, as the stage builds it (same model, same
  optimiser wrapper), on one fixed batch of the stage (the data
  preprocessor's output, made once and kept in memory): forward, loss,
  backward, optimiser step; no dataloader, no hooks.
- step / bare: the step over the bare net, with the stage's workers and
  with none.

Timed with ``time.perf_counter`` (after ``torch.cuda.synchronize`` on a
GPU) in ``torch.set_num_threads(--threads)`` threads (default:
``OMP_NUM_THREADS``, else torch's default). The dataloader's workers
prefetch two batches each, so ``--iters`` should be well above twice the
stage's workers for a steady state. Prints the command line, then a
markdown table, one row per stage.
"""
import argparse
import copy
import gc
import os
import os.path as osp
import shlex
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import iaffinity_plugins  # noqa: F401  (before mmseg: compat + registration)
import torch
from mmengine.config import Config, DictAction
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from iaffinity_plugins.engine import stage_benchmark as bench
from iaffinity_plugins.engine.console import QuietConsoleRunner
from iaffinity_plugins.engine.stage_configs import set_superpixels
from iaffinity_plugins.engine.stage_runner import (build_stage_runner_cfg,
                                                   stage_dataloader)

STAGES = ('cam', 'unary', 'pairwise', 'confidence')
HEADER = ('| stage | batch x crop | workers | step (s/it) | data wait '
          '(s/it) | step, 0 workers (s/it) | data wait, 0 workers (s/it) | '
          'preprocessor (s/it) | bare net (s/it) | step / bare | step / '
          'bare, 0 workers |')


# ------------------------------------------------------------ the stages
def stage_setup(cfg: Config, work_dir: str, stage: str,
                step: int) -> Tuple[dict, Optional[str], str]:
    """A stage as the EM loop trains it at step ``step``.

    Returns:
        tuple: The stage config, the label folder it trains on (None for
        the CAM classifier: image tags) and its name in the run (e.g.
        ``'step_0/unary'``).

    Raises:
        ValueError: the config has no such stage.
        RuntimeError: the run's stage that writes the labels (or trains
            the pairwise net's f_T) is not done.
        FileNotFoundError: the label folder is missing.
    """
    loop_cfg = cfg.train_cfg.to_dict()
    if loop_cfg.get(stage) is None:
        raise ValueError(f'the config has no {stage} net '
                         f'(train_cfg.{stage}=None)')
    if stage == 'cam':
        return copy.deepcopy(loop_cfg['cam']), None, 'seeds/cam'
    if stage == 'unary':
        unary_labels = loop_cfg.get('unary_labels', 'refined')
        # The run's stage that writes what the loop trains f_T on.
        writer = 'seeds/labels' if step == 0 else (
            f"step_{step - 1}/"
            f"{'refine' if unary_labels == 'refined' else 'mine'}")
        labels = bench.unary_training_labels(work_dir, step, unary_labels)
        stage_cfg = copy.deepcopy(loop_cfg['unary'])
    elif stage == 'pairwise':
        writer = f'step_{step}/mine'
        labels = bench.pairwise_training_labels(work_dir, step)
        stage_cfg = bench.run_pairwise_stage_cfg(cfg, work_dir, step)
    else:  # confidence: on f_T's output, as the loop's _train_confidence
        writer = f'step_{step}/unary_labels'
        labels = osp.join(work_dir, *writer.split('/'))
        stage_cfg = copy.deepcopy(loop_cfg['confidence'])
        set_superpixels(stage_cfg, work_dir, loop_cfg.get('superpixels'))
    bench.stage_outputs(work_dir, writer)
    return stage_cfg, bench.check_label_dir(labels), f'step_{step}/{stage}'


def stage_workers(stage_cfg: dict) -> int:
    """The stage's dataloader workers, as the stage runner builds them
    (:func:`~iaffinity_plugins.engine.stage_runner.stage_dataloader`)."""
    dataloader = stage_cfg.get('train_dataloader') or stage_dataloader(
        stage_cfg, {})
    return dataloader.get('num_workers', 0)


def with_workers(stage_cfg: dict, workers: int) -> dict:
    """A copy of the stage config with ``workers`` dataloader workers."""
    stage_cfg = copy.deepcopy(stage_cfg)
    if 'train_dataloader' in stage_cfg:
        stage_cfg['train_dataloader']['num_workers'] = workers
        stage_cfg['train_dataloader']['persistent_workers'] = False
    else:
        stage_cfg['num_workers'] = workers
    return stage_cfg


# ---------------------------------------------------------------- timing
def synchronize() -> None:
    """Wait for the GPU's queued work (nothing on a CPU)."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


class IterationClock(Hook):
    """Times a runner's training iterations (hooks of lowest priority:
    after every other hook of an iteration).

    Records when each iteration's ``train_step`` starts (after its
    ``before_train_iter`` hooks) and when it ends (after its
    ``after_train_iter`` hooks), and keeps the batch of iteration
    ``keep_batch``.
    """

    priority = 'LOWEST'

    def __init__(self, keep_batch: int = 0) -> None:
        self.keep_batch = keep_batch
        self.batch: Any = None
        self.starts: List[float] = []
        self.ends: List[float] = []

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch: Any = None) -> None:
        if batch_idx == self.keep_batch:
            self.batch = data_batch
        synchronize()
        self.starts.append(time.perf_counter())

    def after_train_iter(self, runner, batch_idx: int, data_batch: Any = None,
                         outputs: Any = None) -> None:
        synchronize()
        self.ends.append(time.perf_counter())

    def seconds(self, warmup: int, iters: int) -> Dict[str, float]:
        """``step`` and ``data_wait``, seconds per iteration of the
        ``iters`` iterations after ``warmup`` (>= 1) ones."""
        timed = range(warmup, warmup + iters)
        return dict(
            step=(self.ends[timed[-1]] - self.ends[warmup - 1]) / iters,
            data_wait=sum(self.starts[i] - self.ends[i - 1]
                          for i in timed) / iters)


def seconds_per_call(function: Callable[[], Any], iters: int,
                     warmup: int) -> float:
    """Mean seconds of ``function()`` over ``iters`` calls after ``warmup``
    untimed ones."""
    for _ in range(warmup):
        function()
    synchronize()
    start = time.perf_counter()
    for _ in range(iters):
        function()
    synchronize()
    return (time.perf_counter() - start) / iters


def run_stage(stage_cfg: dict, cfg: Config, label_dir: Optional[str],
              out_dir: str, name: str, iters: int,
              warmup: int) -> Tuple[QuietConsoleRunner, IterationClock]:
    """Train the stage for ``warmup + iters + 1`` iterations in ``out_dir``
    as the loop trains it; returns its runner and clock (which keeps the
    batch of the first timed iteration)."""
    stage_cfg = copy.deepcopy(stage_cfg)
    stage_cfg['train_cfg']['max_iters'] = warmup + iters + 1
    runner = QuietConsoleRunner.from_cfg(build_stage_runner_cfg(
        stage_cfg, cfg, out_dir, name, label_dir))
    clock = IterationClock(keep_batch=warmup)
    runner.register_hook(clock)
    runner.train()
    return runner, clock


def bare_net_seconds(runner, batch: Any, iters: int,
                     warmup: int) -> Dict[str, Any]:
    """The data preprocessor's and the bare network's seconds per
    iteration on ``batch`` (the runner's model and optimiser wrapper, as
    ``BaseModel.train_step`` uses them), and the input's shape."""
    model = runner.model.module if is_model_wrapper(runner.model) \
        else runner.model
    optim_wrapper = runner.optim_wrapper
    model.train()
    preprocess = seconds_per_call(lambda: model.data_preprocessor(batch, True),
                                  iters, warmup)
    data = model.data_preprocessor(batch, True)

    def step() -> None:
        with optim_wrapper.optim_context(model):
            losses = model(**data, mode='loss')
        loss, _ = model.parse_losses(losses)
        optim_wrapper.update_params(loss)

    return dict(preprocessor=preprocess,
                bare=seconds_per_call(step, iters, warmup),
                shape=tuple(data['inputs'].shape))


def measure_stage(cfg: Config, work_dir: str, stage: str, step: int,
                  iters: int, warmup: int, threads: int) -> dict:
    """Every time of one stage (module docstring), in seconds per
    iteration."""
    stage_cfg, label_dir, name = stage_setup(cfg, work_dir, stage, step)
    workers = stage_workers(stage_cfg)
    root = osp.join(work_dir, 'benchmarks', 'stage_step')
    os.makedirs(root, exist_ok=True)
    result = dict(stage=stage, name=name, workers=workers)
    with tempfile.TemporaryDirectory(prefix=f'{stage}_', dir=root) as tmp:
        # Without workers first: its model and a batch give the bare net.
        torch.set_num_threads(threads)
        runner, clock = run_stage(
            with_workers(stage_cfg, 0), cfg, label_dir,
            osp.join(tmp, 'workers_0'), f'stage_step/{stage}_workers_0',
            iters, warmup)
        zero = clock.seconds(warmup, iters)
        result.update(step_zero=zero['step'], data_wait_zero=zero['data_wait'])
        torch.set_num_threads(threads)
        result.update(bare_net_seconds(runner, clock.batch, iters, warmup))
        del runner, clock
        gc.collect()
        if workers == 0:
            result.update(step=zero['step'], data_wait=zero['data_wait'])
        else:
            torch.set_num_threads(threads)
            runner, clock = run_stage(
                stage_cfg, cfg, label_dir, osp.join(tmp, f'workers_{workers}'),
                f'stage_step/{stage}_workers_{workers}', iters, warmup)
            result.update(clock.seconds(warmup, iters))
            del runner, clock
            gc.collect()
    result['ratio'] = result['step'] / result['bare']
    result['ratio_zero'] = result['step_zero'] / result['bare']
    return result


# ---------------------------------------------------------------- output
def format_row(result: dict) -> str:
    """One markdown row of :data:`HEADER`."""
    batch, _, height, width = result['shape']
    return bench.markdown_row(
        result['name'], f'{batch} x {height}x{width}', result['workers'],
        *(f'{result[key]:.3f}' for key in (
            'step', 'data_wait', 'step_zero', 'data_wait_zero',
            'preprocessor', 'bare')),
        f"{result['ratio']:.2f}", f"{result['ratio_zero']:.2f}")


def default_threads() -> int:
    """``OMP_NUM_THREADS`` when set, else torch's thread count."""
    return int(os.environ.get('OMP_NUM_THREADS') or torch.get_num_threads())


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = bench.run_parser(__doc__.splitlines()[0],
                              'EM step T whose stages are timed', 0)
    parser.add_argument('--stages', nargs='+', choices=STAGES,
                        help='the stages to time (default: every one the '
                        'config has)')
    parser.add_argument('--iters', type=int, default=20,
                        help='timed iterations')
    parser.add_argument('--warmup', type=int, default=3,
                        help='untimed iterations before them (>= 1)')
    parser.add_argument('--threads', type=int, default=default_threads(),
                        help='torch threads (default: OMP_NUM_THREADS)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='overrides of CONFIG, key=value')
    args = bench.parse_benchmark_args(parser, argv)
    if args.iters < 1 or args.warmup < 1:
        parser.error('--iters and --warmup must be >= 1')
    return args


def main(argv: Optional[List[str]] = None) -> Tuple[List[dict], str]:
    """Time the stages; prints and returns the results and the table."""
    args = parse_args(argv)
    command = shlex.join(['python', 'tools/benchmarks/stage_step.py',
                          *(sys.argv[1:] if argv is None else argv)])
    torch.set_num_threads(args.threads)
    cfg = bench.load_run_config(args.config, args.cfg_options, args.work_dir)
    stages = args.stages or [stage for stage in STAGES
                             if cfg.train_cfg.get(stage) is not None]
    start = time.perf_counter()
    results = []
    for stage in stages:
        results.append(measure_stage(cfg, args.work_dir, stage, args.step,
                                     args.iters, args.warmup, args.threads))
        print(f'done {stage} after {time.perf_counter() - start:.0f} s',
              file=sys.stderr)
    table = bench.table(HEADER, '\n'.join(map(format_row, results)))
    print(f'command: {command}\n')
    print(f'{args.iters} timed iterations after {args.warmup} warm-up, '
          f'torch.set_num_threads({args.threads}), {os.cpu_count()} CPU '
          f'cores, {bench.default_device()}, '
          f'{time.perf_counter() - start:.0f} s in all\n')
    print(table)
    return results, table


if __name__ == '__main__':
    main()
