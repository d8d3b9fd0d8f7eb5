"""Every tool that starts a process group destroys it before it exits.

A group left to the interpreter's exit could abort a finished 2-process
run ("terminate called without an active exception", SIGABRT). Here each
tool with ``--launcher`` (tools/train.py, tools/test.py,
tools/make_seeds.py, tools/mine_labels.py) runs on 2 gloo processes
(torchrun, one thread per process), run after run, each into fresh
folders: every run must end with exit status 0 and without that message.
A run that fails (its images emptied) must end promptly, with a non-zero
status, its error and without that message, also when only one rank fails
while the other waits for it in a collective. And a crash at shutdown
must lose no finished stage: an EM run whose ``destroy_process_group``
aborts has recorded every stage in ``manifest.json``, and its rerun skips
them all.
"""
import gc
import os
from pathlib import Path
from typing import Callable, List

import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope
from test_distributed_label_tools import (NUM_IMAGES, mining_config,
                                          run_on_processes, torchrun)
from test_engine.test_em_loop import (_finished_outputs, _stage_names,
                                      _stages, _tiny_config)
from test_labels.test_seeds import (make_seeds, make_seeds_config,
                                    save_random_init)

from iaffinity_plugins.cli import load_config, num_classes_of

ABORT = 'terminate called'
TOOLS = ['make_seeds.py', 'mine_labels.py', 'test.py', 'train.py']
# tools/<tool> -> its arguments for run number i (fresh output folders).
ToolArgs = Callable[[int], List[str]]
# A failing run must end long before gloo's collectives time out (30 min);
# a run that succeeds takes under 20 s on 2 loaded cores.
FAILURE_TIMEOUT = 180


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


def evaluation_args(tmp_path: Path) -> ToolArgs:
    """tools/test.py's arguments: the tiny EM config (its model, the final
    unary net, is tested on the 4 val images) and that net's random
    init."""
    config = _tiny_config(tmp_path, iters=2, num_steps=0)
    # The config's num_classes=None filled from the data, as the tool does.
    filled = str(tmp_path / 'filled.py')
    load_config(config, None, None, 'none').dump(filled)
    checkpoint = str(tmp_path / 'unary.pth')
    with DefaultScope.overwrite_default_scope('mmseg'):
        save_random_init(filled, checkpoint)
    return lambda run: [config, checkpoint, '--work-dir',
                        str(tmp_path / f'w{run}')]


def tool_args(tool: str, tmp_path: Path) -> ToolArgs:
    """Prepare the inputs of ``tool`` (its images in ``tmp_path / 'data'``);
    its arguments per run."""
    if tool == 'train.py':
        config = train_config(tmp_path)
        return lambda run: [config, '--work-dir', str(tmp_path / f'w{run}')]
    if tool == 'test.py':
        return evaluation_args(tmp_path)
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


@pytest.mark.parametrize('tool', TOOLS)
def test_two_process_runs_exit_cleanly(tmp_path, tool):
    run_repeatedly(tool, tmp_path, times=2)


@pytest.mark.slow
@pytest.mark.parametrize('tool', TOOLS)
def test_ten_two_process_runs_in_a_row_exit_cleanly(tmp_path, tool):
    """Issue #21: the abort came once in a while; 10 runs in a row."""
    run_repeatedly(tool, tmp_path, times=10)


@pytest.mark.parametrize('tool, spoiled', [
    *[(tool, '*.jpg') for tool in TOOLS],
    # Rank 1's first image only (index 1): rank 0 writes its share and
    # waits for rank 1 in the summary's all_gather.
    ('make_seeds.py', 'train_00001.jpg')])
def test_a_failing_two_process_run_exits_promptly_with_its_error(
        tmp_path, tool, spoiled):
    """Images emptied (undecodable), so that each tool fails after its
    group started: a missing image would fail the data set's build, which
    some tools do before (:func:`~iaffinity_plugins.cli.load_config`)."""
    args = tool_args(tool, tmp_path)(0)
    # Building the data set generates it (else the tool would, after this).
    num_classes_of(Config.fromfile(args[0]).train_dataloader.dataset)
    images = tmp_path / 'data' / 'JPEGImages'
    paths = list(images.glob(spoiled))
    assert paths
    for path in paths:
        path.write_bytes(b'')
    returncode, output = run_on_processes(2, tool, *args,
                                          timeout=FAILURE_TIMEOUT)
    assert returncode != 0, output[-3000:]
    assert f'OSError: cannot load image {images}' in output, output[-3000:]
    assert ABORT not in output, output[-3000:]


# Run at the start of every torchrun worker (not of torchrun itself):
# destroy_process_group, the last thing a tool does with its group, kills
# the process as the reported abort at exit did (without a core file).
ABORTING_DESTROY = """
import os
import resource

if 'LOCAL_RANK' in os.environ:
    import torch.distributed

    def destroy_process_group(group=None):
        print('destroy_process_group: os.abort()', flush=True)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        os.abort()

    torch.distributed.destroy_process_group = destroy_process_group
"""


def test_a_crash_at_shutdown_loses_no_finished_stage(tmp_path):
    """A 2-process EM run that aborts as it destroys its group (after the
    last stage) has every stage recorded as done; run again, it skips them
    all and writes no label or weights file again."""
    config = _tiny_config(tmp_path, iters=2, num_steps=0)
    site = tmp_path / 'site'
    site.mkdir()
    (site / 'sitecustomize.py').write_text(ABORTING_DESTROY)
    python_path = os.pathsep.join(
        filter(None, [str(site), os.environ.get('PYTHONPATH')]))
    returncode, output = run_on_processes(
        2, 'train.py', config, env=dict(PYTHONPATH=python_path))
    assert returncode != 0, output[-3000:]
    assert output.count('destroy_process_group: os.abort()') == 2, \
        output[-3000:]
    work_dir = tmp_path / 'work'
    stages = _stages(work_dir)
    assert list(stages) == _stage_names(num_steps=0)
    assert all(record['state'] == 'done' for record in stages.values())
    outputs = _finished_outputs(work_dir)

    output = torchrun(2, 'train.py', config)
    for name in _stage_names(num_steps=0):
        assert f'[iaffinity] {name}: done, skipped' in output, name
    assert outputs
    assert {path: path.stat().st_mtime_ns for path in outputs} == outputs
    assert _stages(work_dir) == stages


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
