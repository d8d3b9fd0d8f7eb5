"""Kill anywhere, same labels: the own-data config (ImageNet lite0 in every
network) on a tiny generated photo set, killed mid-stage and started again,
writes byte for byte the label files of a run that was never killed."""
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from mmengine.config import Config
from test_em_loop import (CUSTOM, REPO, _newest_log, _stage_names, _stages,
                          _tiny_config, _train)

from iaffinity_plugins.datasets.photo_demo import make_photo_demo

NUM_TRAIN = 8
# A checkpoint after every iteration: a network killed after its first
# one resumes at iteration 1 of 3. (The poly schedule's last iteration has
# lr 0: with 2 iterations a resumed one could go wrong unseen.)
ITERS = 3
LABEL_FOLDERS = ('seeds', 'unary_labels', 'labels', 'refined')


def _photo_config(root) -> str:
    """deeplab_lite0_custom.py on 8 photo-demo images of 64-80 px, one EM
    step after step 0 and no final net."""
    make_photo_demo(str(root / 'data'), num_train=NUM_TRAIN, num_val=1,
                    min_size=64, max_size=80, max_objects=2, seed=3)
    config = _tiny_config(root, iters=ITERS, num_steps=1, config=CUSTOM)
    cfg = Config.fromfile(config)
    cfg.train_cfg.train_final = False
    cfg.default_hooks.checkpoint.interval = 1
    # No report and plots after each step: they take a fifth of the run.
    cfg.custom_hooks = []
    cfg.dump(config)
    return config


def _finish(config: str) -> str:
    process = _train(config)
    output, _ = process.communicate(timeout=900)
    assert process.returncode == 0, output[-3000:]
    return output


def _label_files(work_dir) -> dict:
    """Every label PNG of the run, by its path in the work dir."""
    return {str(path.relative_to(work_dir)): path.read_bytes()
            for folder in LABEL_FOLDERS
            for path in work_dir.glob(f'step_*/{folder}/*.png')}


def _weights(work_dir) -> dict:
    """Every trained network's final weights, by stage folder."""
    return {str(path.parent.relative_to(work_dir)):
            torch.load(path, weights_only=True)['state_dict']
            for path in work_dir.glob('**/final_weights.pth')}


@pytest.fixture(scope='module')
def reference(tmp_path_factory):
    """The work dir of a run that was never killed."""
    root = tmp_path_factory.mktemp('reference')
    _finish(_photo_config(root))
    return root / 'work'


# Stage killed -> what it has written when it is killed: its first
# checkpoint (mid training) or a folder with its first label file (mid label
# writing). Each case takes about a run (~100 s on a CPU core, the reference
# run ~50 s more): the pairwise net's runs by default, the others with
# -m slow. Killed in step_1/unary, 10 label files differed before
# rng_state.py (dropout drew other masks after the resume).
KILL_POINTS = {
    'step_1/pairwise': 'step_1/pairwise/last_checkpoint',
    'step_1/mine': 'step_1/labels',
    'seeds/labels': 'step_0/seeds',
    'step_1/unary': 'step_1/unary/last_checkpoint',
    'step_1/confidence': 'step_1/confidence/last_checkpoint',
}
DEFAULT_KILL_POINTS = ('step_1/pairwise', )


def _pngs(folder) -> list:
    if not folder.is_dir():
        return []
    return [name for name in os.listdir(folder) if name.endswith('.png')]


def _reached(marker) -> bool:
    if marker.name == 'last_checkpoint':
        return marker.exists()
    return bool(_pngs(marker))


def _kill_when(config: str, log_path, marker) -> None:
    """Start the run and SIGKILL it (its whole process group) as soon as
    ``marker`` is :func:`_reached`."""
    with open(log_path, 'w') as log:
        process = subprocess.Popen(
            [sys.executable, os.path.join(REPO, 'tools', 'train.py'),
             config], cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
    deadline = time.time() + 600
    while not _reached(marker):
        assert process.poll() is None, log_path.read_text()[-3000:]
        assert time.time() < deadline, 'the kill point never came'
        time.sleep(0.005)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@pytest.mark.parametrize('stage', [
    pytest.param(stage, marks=() if stage in DEFAULT_KILL_POINTS else
                 pytest.mark.slow) for stage in KILL_POINTS])
def test_killed_photo_run_resumes_to_the_same_labels(tmp_path, reference,
                                                     stage):
    """SIGKILL mid-stage, the same command again: every label file and
    network equals the uninterrupted run's, bit for bit."""
    config = _photo_config(tmp_path)
    work_dir = tmp_path / 'work'
    marker = work_dir / KILL_POINTS[stage]
    _kill_when(config, tmp_path / 'killed.log', marker)
    assert _stages(work_dir)[stage]['state'] == 'running'
    if marker.name == 'last_checkpoint':
        _finish(config)
        # The network resumed at iteration 1 and trained on from there.
        assert 'resumed epoch: 0, iter: 1\n' in _newest_log(work_dir / stage)
    else:
        # Killed with part of the stage's labels written.
        assert 0 < len(_pngs(marker)) < NUM_TRAIN
        _finish(config)

    stages = _stages(work_dir)
    assert list(stages) == list(_stages(reference)) == _stage_names(
        num_steps=1)[:-1]
    assert all(record['state'] == 'done' for record in stages.values())
    labels, expected = _label_files(work_dir), _label_files(reference)
    assert len(expected) == NUM_TRAIN * (1 + 3 * 2)
    assert sorted(labels) == sorted(expected)
    assert [name for name in expected if labels[name] != expected[name]] == []
    weights, expected = _weights(work_dir), _weights(reference)
    assert sorted(weights) == sorted(expected)
    for name, state in expected.items():
        assert all(torch.equal(weights[name][key], value)
                   for key, value in state.items()), name
