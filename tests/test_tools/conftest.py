"""A tiny finished EM run, shared by the benchmark tools' tests."""
import os
import os.path as osp
import subprocess
import sys
from typing import Tuple

import pytest
from mmengine.config import Config

from iaffinity_plugins.cli import config_dicts, replace_data_root

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(REPO, 'configs', 'iaffinity', 'synthetic_demo.py')
TINY_DATA = dict(num_train=6, num_val=2, min_size=48, max_size=56,
                 num_classes=2, max_objects=2, seed=3)
# tests/conftest.py sets two threads in the test process; the run trains
# with as many, so that a test retraining one of its nets in the test
# process can reproduce it to the bit.
THREADS = 2


def tiny_config(tmp_path) -> str:
    """The demo shrunk to seconds: 6 tiny images, 2 iterations per
    network, one EM step, no final net."""
    cfg = Config.fromfile(DEMO).to_dict()
    replace_data_root(cfg, cfg['data_root'], str(tmp_path / 'data'))
    cfg['work_dir'] = str(tmp_path / 'work')
    for node in config_dicts(cfg):
        for key, value in dict(generator_cfg=TINY_DATA, crop_size=(32, 32),
                               size=(32, 32), num_workers=0,
                               persistent_workers=False, batch_size=2,
                               max_iters=2, end=2).items():
            if key in node:
                node[key] = value
    loop = cfg['train_cfg']
    loop.update(num_steps=1, energy_samples=2, train_final=False)
    for stage in ('cam', 'unary', 'pairwise', 'confidence'):
        loop[stage].update(batch_size=2, num_workers=0)
    loop['seeds'].update(scales=(1.0, ), flip=False)
    cfg['default_hooks']['checkpoint']['interval'] = 1
    path = str(tmp_path / 'tiny_em.py')
    Config(cfg).dump(path)
    return path


@pytest.fixture(scope='session')
def tiny_run(tmp_path_factory) -> Tuple[str, str]:
    """``(config, work_dir)`` of the tiny run, trained once per session."""
    tmp_path = tmp_path_factory.mktemp('run')
    config = tiny_config(tmp_path)
    process = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'train.py'), config],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, timeout=600,
        env=dict(os.environ, OMP_NUM_THREADS=str(THREADS)))
    assert process.returncode == 0, process.stdout[-3000:]
    return config, str(tmp_path / 'work')


@pytest.fixture(scope='session')
def tiny_data() -> dict:
    """The tiny run's synthetic set (``num_train`` training images)."""
    return dict(TINY_DATA)
