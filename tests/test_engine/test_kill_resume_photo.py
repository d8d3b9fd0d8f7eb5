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
from test_em_loop import (CUSTOM, REPO, _stage_names, _stages, _tiny_config,
                          _train)

from iaffinity_plugins.datasets.photo_demo import make_photo_demo

NUM_TRAIN = 8
# Checkpoints every 2 iterations (_tiny_config): a network killed after its
# first one resumes at iteration 2 of 4.
ITERS = 4
LABEL_FOLDERS = ('seeds', 'unary_labels', 'labels', 'refined')


def _photo_config(root) -> str:
    """deeplab_lite0_custom.py on 8 photo-demo images of 64-80 px, one EM
    step after step 0 and no final net."""
    make_photo_demo(str(root / 'data'), num_train=NUM_TRAIN, num_val=1,
                    min_size=64, max_size=80, max_objects=2, seed=3)
    config = _tiny_config(root, iters=ITERS, num_steps=1, config=CUSTOM)
    cfg = Config.fromfile(config)
    cfg.train_cfg.train_final = False
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


def _has_checkpoint(folder: str):
    return lambda work_dir: (work_dir / folder / 'last_checkpoint').exists()


def _has_label(folder: str):
    return lambda work_dir: (work_dir / folder).is_dir() and any(
        name.endswith('.png') for name in os.listdir(work_dir / folder))


# (stage killed, when): mid training, after its first checkpoint; mid label
# writing, after its first label file.
KILL_POINTS = {
    'step_1/pairwise': _has_checkpoint('step_1/pairwise'),
    'step_1/mine': _has_label('step_1/labels'),
    'seeds/labels': _has_label('step_0/seeds'),
}


def _kill_when(config: str, work_dir, log_path, ready) -> None:
    """Start the run and SIGKILL it (its whole process group) as soon as
    ``ready(work_dir)``."""
    with open(log_path, 'w') as log:
        process = subprocess.Popen(
            [sys.executable, os.path.join(REPO, 'tools', 'train.py'),
             config], cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
    deadline = time.time() + 600
    while not ready(work_dir):
        assert process.poll() is None, log_path.read_text()[-3000:]
        assert time.time() < deadline, 'the kill point never came'
        time.sleep(0.005)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@pytest.mark.parametrize('stage', list(KILL_POINTS))
def test_killed_photo_run_resumes_to_the_same_labels(tmp_path, reference,
                                                     stage):
    config = _photo_config(tmp_path)
    work_dir = tmp_path / 'work'
    _kill_when(config, work_dir, tmp_path / 'killed.log', KILL_POINTS[stage])
    assert _stages(work_dir)[stage]['state'] == 'running'
    output = _finish(config)
    if stage.endswith('labels') or stage.endswith('mine'):
        assert f'[iaffinity] {stage}: ' in output

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
