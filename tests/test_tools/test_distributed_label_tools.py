"""tools/make_seeds.py and tools/mine_labels.py with ``--launcher pytorch``
on 2 gloo processes (torchrun): every label written once, and the same
labels as one process writes."""
import importlib.util
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np
import pytest
import torch
from mmengine.config import Config
from test_labels.test_seeds import (TINY_RESNET, make_seeds,
                                    make_seeds_config, save_random_init)

REPO = Path(__file__).resolve().parents[2]
NUM_IMAGES = 5  # odd: the two ranks get 3 and 2 images


def run_on_processes(nproc: int, tool: str, *args: str,
                     timeout: float = 600,
                     env: Optional[Dict[str, str]] = None) -> Tuple[int, str]:
    """Run ``tools/<tool>`` on ``nproc`` gloo processes (torchrun,
    ``--launcher pytorch``); its exit status and output.

    Each process has one thread (torchrun's OMP_NUM_THREADS=1, set here
    explicitly so the numbers match a 1-thread in-process run). ``env`` is
    added to this process's environment. The run has its own session:
    should it outlive ``timeout`` seconds, torchrun and its workers are
    killed and the test fails with the output so far.
    """
    with subprocess.Popen(
            [sys.executable, '-m', 'torch.distributed.run', '--standalone',
             f'--nproc_per_node={nproc}', str(REPO / 'tools' / tool), *args,
             '--launcher', 'pytorch'],
            cwd=REPO,
            env=dict(os.environ, OMP_NUM_THREADS='1', **(env or {})),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True) as process:
        try:
            output, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
            pytest.fail(f'{tool} on {nproc} processes still ran after '
                        f'{timeout} s: {output[-3000:]}')
    return process.returncode, output


def torchrun(nproc: int, tool: str, *args: str) -> str:
    """:func:`run_on_processes`, which must succeed; its output."""
    returncode, output = run_on_processes(nproc, tool, *args)
    assert returncode == 0, output[-3000:]
    return output


def folder_bytes(folder: Path) -> dict:
    return {name: (folder / name).read_bytes()
            for name in sorted(os.listdir(folder))}


def test_seeds_of_one_and_two_processes_are_identical(tmp_path):
    config = make_seeds_config(tmp_path, num_train=NUM_IMAGES)
    checkpoint = str(tmp_path / 'cam.pth')
    save_random_init(config, checkpoint)
    torch.set_num_threads(1)
    one = make_seeds.main([config, checkpoint, '--out', str(tmp_path / '1'),
                           '--cam-dir', str(tmp_path / 'cams1')])
    assert one['written'] == NUM_IMAGES
    output = torchrun(2, 'make_seeds.py', config, checkpoint, '--out',
                      str(tmp_path / '2'), '--cam-dir',
                      str(tmp_path / 'cams2'))
    # The summary is summed over the ranks and printed once: each image
    # was written by exactly one process.
    assert output.count(' already there, ') == 1
    assert f'seeds: {NUM_IMAGES} written, 0 already there' in output
    labels = folder_bytes(tmp_path / '1')
    # the labels and options.json
    assert len(labels) == NUM_IMAGES + 1
    assert folder_bytes(tmp_path / '2') == labels
    for name in os.listdir(tmp_path / 'cams1'):
        np.testing.assert_array_equal(np.load(tmp_path / 'cams1' / name),
                                      np.load(tmp_path / 'cams2' / name))


def mining_config(tmp_path) -> str:
    """The seeds config plus a tiny region classifier trained for 2
    iterations (``train_cfg.confidence``, as in EM configs)."""
    cfg = Config.fromfile(make_seeds_config(tmp_path, num_train=NUM_IMAGES))
    preprocessor = dict(cfg.model.data_preprocessor, size_divisor=8)
    cfg.train_cfg = dict(
        confidence=dict(
            model=dict(type='RegionClassifier', backbone=TINY_RESNET,
                       in_channels=16, hidden_channels=16, num_classes=None,
                       data_preprocessor=preprocessor),
            pipeline=[dict(type='LoadImageWithCheck'),
                      dict(type='LoadAnnotationsWithCheck'),
                      dict(type='PackWSSSInputs')],
            batch_size=1, num_workers=0,
            optim_wrapper=dict(type='OptimWrapper',
                               optimizer=dict(type='SGD', lr=0.01)),
            train_cfg=dict(type='IterBasedTrainLoop', max_iters=2)),
        superpixels=dict(method='felzenszwalb', scale=20, min_size=5),
        mining=dict(mode='relabel', ratio=0.8, threshold=0.0))
    path = str(tmp_path / 'mining_tiny_synthetic.py')
    cfg.dump(path)
    return path


def test_mining_on_two_processes_trains_with_ddp_and_writes_each_label_once(
        tmp_path):
    config = mining_config(tmp_path)
    checkpoint = str(tmp_path / 'cam.pth')
    save_random_init(config, checkpoint)
    seeds = str(tmp_path / 'seeds')
    make_seeds.main([config, checkpoint, '--out', seeds])
    work_dir = tmp_path / 'work'
    output = torchrun(2, 'mine_labels.py', config, '--labels', seeds,
                      '--out', str(tmp_path / 'mined'), '--work-dir',
                      str(work_dir))
    # The region classifier trained once, on both ranks (DDP); its runner's
    # environment dump is in its log file, not on the console.
    logs = list((work_dir / 'confidence').glob('*/*.log'))
    assert logs and all('Distributed training: True' in log.read_text()
                        for log in logs)
    assert (work_dir / 'confidence' / 'final_weights.pth').is_file()
    assert output.count(' already there)') == 1
    assert f'mined {NUM_IMAGES} images (0 already there)' in output
    assert sorted(os.listdir(tmp_path / 'mined')) == sorted(
        os.listdir(seeds))


def test_an_old_configs_confidence_mode_fails_naming_the_modes(tmp_path):
    """mining.mode='confidence' (renamed 'confirm'; the default is now the
    paper's 'relabel') fails before the region classifier trains."""
    spec = importlib.util.spec_from_file_location(
        'mine_labels', REPO / 'tools' / 'mine_labels.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    cfg = Config.fromfile(mining_config(tmp_path))
    cfg.train_cfg.mining.mode = 'confidence'
    config = str(tmp_path / 'old_mode.py')
    cfg.dump(config)
    work_dir = tmp_path / 'work'
    with pytest.raises(ValueError, match=r"'confidence'.*'relabel', "
                       r"'confirm', 'majority', 'none'"):
        tool.main([config, '--labels', str(tmp_path), '--out',
                   str(tmp_path / 'mined'), '--work-dir', str(work_dir)])
    assert not (work_dir / 'confidence').exists()
