"""Every tool that starts a process group destroys it before it exits.

A group left to the interpreter's exit could abort a finished 2-process
run ("terminate called without an active exception", SIGABRT). Here each
tool with ``--launcher`` runs on 2 gloo processes (torchrun, one thread per
process), run after run, each into fresh folders: every run must end with
exit status 0 and without that message.
"""
import gc
from pathlib import Path
from typing import Callable, List

import pytest
from mmengine.config import Config
from test_distributed_label_tools import NUM_IMAGES, mining_config, torchrun
from test_labels.test_seeds import (make_seeds, make_seeds_config,
                                    save_random_init)

ABORT = 'terminate called'
# tools/<tool> -> its arguments for run number i (fresh output folders).
ToolArgs = Callable[[int], List[str]]


def train_config(tmp_path: Path) -> str:
    """A plain (non-EM) training for tools/train.py: the seeds config's
    CAM classifier, 2 iterations on the tiny synthetic set, no val loop."""
    cfg = Config.fromfile(make_seeds_config(tmp_path, num_train=NUM_IMAGES))
    cfg = cfg.to_dict()
    for key in ('val_dataloader', 'val_evaluator', 'test_dataloader',
                'test_evaluator'):
        cfg.pop(key)
    cfg['train_dataloader'].update(batch_size=1, num_workers=0,
                                   persistent_workers=False)
    # Training batches are padded to a common size.
    cfg['model']['data_preprocessor']['size_divisor'] = 8
    cfg['train_dataloader']['dataset']['pipeline'] = [
        dict(type='LoadImageWithCheck'), dict(type='PackWSSSInputs')]
    cfg.update(optim_wrapper=dict(type='OptimWrapper',
                                  optimizer=dict(type='SGD', lr=0.01)),
               train_cfg=dict(type='IterBasedTrainLoop', max_iters=2))
    path = str(tmp_path / 'train_tiny_synthetic.py')
    Config(cfg).dump(path)
    return path


def tool_args(tool: str, tmp_path: Path) -> ToolArgs:
    """Prepare the inputs of ``tool``; its arguments per run."""
    if tool == 'train.py':
        config = train_config(tmp_path)
        return lambda run: [config, '--work-dir', str(tmp_path / f'w{run}')]
    config = mining_config(tmp_path)
    checkpoint = str(tmp_path / 'cam.pth')
    save_random_init(config, checkpoint)
    if tool == 'make_seeds.py':
        return lambda run: [config, checkpoint, '--out',
                            str(tmp_path / f'seeds{run}')]
    seeds = str(tmp_path / 'seeds')
    make_seeds.main([config, checkpoint, '--out', seeds])
    # Without --checkpoint: the region classifier trains with DDP first.
    return lambda run: [config, '--labels', seeds, '--out',
                        str(tmp_path / f'mined{run}'), '--work-dir',
                        str(tmp_path / f'w{run}')]


def run_repeatedly(tool: str, tmp_path: Path, times: int) -> None:
    args = tool_args(tool, tmp_path)
    for run in range(times):
        output = torchrun(2, tool, *args(run))  # asserts exit status 0
        assert ABORT not in output, f'run {run + 1}: {output[-3000:]}'


@pytest.mark.parametrize('tool', ['make_seeds.py', 'mine_labels.py',
                                  'train.py'])
def test_two_process_runs_exit_cleanly(tmp_path, tool):
    run_repeatedly(tool, tmp_path, times=2)


@pytest.mark.slow
@pytest.mark.parametrize('tool', ['make_seeds.py', 'mine_labels.py',
                                  'train.py'])
def test_ten_two_process_runs_in_a_row_exit_cleanly(tmp_path, tool):
    """Issue #21: the abort came once in a while; 10 runs in a row."""
    run_repeatedly(tool, tmp_path, times=10)


def test_scope_frees_the_wrappers_that_hold_the_group(tmp_path):
    """destroy_process_group alone leaves a DDP wrapper in a reference
    cycle (as a runner holds it) alive until the interpreter's exit, with
    the group's C++ threads; the scope collects it first."""
    from torch import distributed as torch_dist
    from torch import nn
    from torch.nn.parallel import DistributedDataParallel

    from iaffinity_plugins.cli import process_group_scope

    def wrappers() -> int:
        return sum(isinstance(obj, DistributedDataParallel)
                   for obj in gc.get_objects())

    gc.collect()
    before = wrappers()
    gc.disable()  # only the scope may collect
    try:
        with process_group_scope():
            torch_dist.init_process_group(
                'gloo', init_method=f'file://{tmp_path / "store"}', rank=0,
                world_size=1)
            owner = dict(model=DistributedDataParallel(nn.Linear(2, 2)))
            owner['self'] = owner  # a cycle, as runner <-> hooks
            del owner
            assert wrappers() == before + 1
        assert not torch_dist.is_initialized()
        assert wrappers() == before
    finally:
        gc.enable()
