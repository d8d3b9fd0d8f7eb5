"""The pairwise net learns to propagate inside the loop (issue 22): the
own-data config (ImageNet lite0 in every network) on a small generated
photo set, step 0 as the loop runs it (f_0 on the seeds, Y_0 mined from f_0's
output, g_0 trained on Y_0, alpha_0^p = G_0 alpha_0^u): the refined labels
are above f_0's own output on the training images."""
import json

from mmengine.config import Config
from test_em_loop import CUSTOM, _finish

from iaffinity_plugins.cli import config_dicts, replace_data_root
from iaffinity_plugins.datasets.photo_demo import make_photo_demo

NUM_TRAIN = 24
# Iterations per network: the region classifier half of them, the pairwise
# net three times as many (with 100 its gates hardly left the identity on
# three randomness seeds of four; docs/benchmarks.md, the pairwise net in a
# tiny loop).
ITERS = 100
STAGE_ITERS = dict(cam=ITERS, unary=ITERS, pairwise=3 * ITERS,
                   confidence=ITERS // 2)


def _step_0_config(root, seed: int = 0) -> str:
    """deeplab_lite0_custom.py as it is (128 px crops, short edge 160) on
    NUM_TRAIN photo-demo images of 144-192 px, fewer iterations and smaller
    batches, step 0 only; ``randomness.seed`` = ``seed``."""
    make_photo_demo(str(root / 'data'), num_train=NUM_TRAIN, num_val=1,
                    min_size=144, max_size=192, max_objects=2, seed=3)
    cfg = Config.fromfile(CUSTOM).to_dict()
    replace_data_root(cfg, cfg['data_root'], str(root / 'data'))
    cfg['work_dir'] = str(root / 'work')
    for node in config_dicts(cfg):
        if 'num_workers' in node:
            node.update(num_workers=0, persistent_workers=False)
    loop = cfg['train_cfg']
    for stage, iters in STAGE_ITERS.items():
        loop[stage]['train_cfg']['max_iters'] = iters
        loop[stage]['param_scheduler'][0]['end'] = iters
        loop[stage].update(batch_size=4, num_workers=0)
    loop.update(num_steps=0, train_final=False, energy_samples=4)
    cfg['randomness'] = dict(seed=seed)
    cfg['default_hooks']['checkpoint']['interval'] = 10 * ITERS
    path = str(root / 'step_0.py')
    Config(cfg).dump(path)
    return path


def test_refined_labels_are_above_the_unary_output(tmp_path):
    """refined_0 - f_0 mIoU on the training images > 0.3: +0.97 to +2.01
    measured over randomness seeds 0-2 and 1 or 2 threads (an identity G
    gives 0.0); 3-5 min on 2 cores."""
    _finish(_step_0_config(tmp_path))
    report = json.loads((tmp_path / 'work' / 'report.json').read_text())
    step = report['steps'][0]
    # f_0 learnt from its seeds (36-45 against 36-45 mIoU measured).
    assert step['unary_miou'] > report['seeds']['miou'] - 10, report
    assert step['refined_miou'] - step['unary_miou'] > 0.3, step
