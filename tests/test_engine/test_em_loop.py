"""End to end: tools/train.py runs Algorithm 1 on a tiny synthetic set,
and a run killed mid-stage, or moved, resumes without retraining finished
stages."""
import json
import logging
import os
import os.path as osp
import re
import shutil
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.config import Config

from iaffinity_plugins.cli import config_dicts, replace_data_root
from iaffinity_plugins.datasets.photo_demo import make_photo_demo
from iaffinity_plugins.engine import em_loop
from iaffinity_plugins.engine.em_loop import IterativeAffinityLoop
from iaffinity_plugins.engine.manifest import (VERSION, Manifest,
                                               OutdatedManifest,
                                               config_hash)
from iaffinity_plugins.labels.label_io import read_label, write_label
from iaffinity_plugins.labels.mining import superpixel_majority
from iaffinity_plugins.labels.superpixels import NPZ_KEY

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(REPO, 'configs', 'iaffinity', 'synthetic_demo.py')
CUSTOM = osp.join(REPO, 'configs', 'iaffinity', 'deeplab_lite0_custom.py')
TINY_DATA = dict(num_train=12, num_val=4, min_size=64, max_size=72,
                 num_classes=2, max_objects=2, seed=3)


def _set_everywhere(node, key, value):
    """Set ``key`` in every dict of a config that has it."""
    for cfg in config_dicts(node):
        if key in cfg:
            cfg[key] = value


def _tiny_config(tmp_path, iters: int = 8, num_steps: int = 2,
                 config: str = DEMO) -> str:
    """An EM config (the demo's by default) shrunk to seconds: tiny data
    in ``tmp_path / 'data'``, few iterations."""
    cfg = Config.fromfile(config).to_dict()
    replace_data_root(cfg, cfg['data_root'], str(tmp_path / 'data'))
    cfg['work_dir'] = str(tmp_path / 'work')
    _set_everywhere(cfg, 'generator_cfg', TINY_DATA)
    _set_everywhere(cfg, 'crop_size', (48, 48))
    _set_everywhere(cfg, 'size', (48, 48))
    _set_everywhere(cfg, 'num_workers', 0)
    _set_everywhere(cfg, 'persistent_workers', False)
    _set_everywhere(cfg, 'batch_size', 1)
    _set_everywhere(cfg, 'max_iters', iters)
    _set_everywhere(cfg, 'end', iters)
    cfg['train_dataloader']['batch_size'] = 1
    loop = cfg['train_cfg']
    for stage in ('cam', 'unary', 'pairwise', 'confidence'):
        loop[stage].update(batch_size=4, num_workers=0)
    loop.update(num_steps=num_steps, energy_samples=4)
    loop['seeds'].update(scales=(1.0, ), flip=False)
    cfg['default_hooks']['checkpoint']['interval'] = 2
    cfg['default_hooks']['logger']['interval'] = 1
    path = str(tmp_path / 'tiny_em.py')
    Config(cfg).dump(path)
    return path


def test_own_data_config_runs_on_a_voc_folder_without_tags(tmp_path):
    """deeplab_lite0_custom.py (pretrained lite0 everywhere) on a tiny
    generated photo set (VOC layout with masks and no tags.txt, as a user's
    photographs): tags come from the masks, every stage runs, the labels are
    evaluated."""
    make_photo_demo(str(tmp_path / 'data'), num_train=10, num_val=3,
                    min_size=64, max_size=80, max_objects=2, seed=3)
    config = _tiny_config(tmp_path, iters=2, num_steps=0, config=CUSTOM)
    output = _finish(config)
    assert 'tags.txt not found' in output  # one line per split
    stages = _stages(tmp_path / 'work')
    assert list(stages) == _stage_names(num_steps=0)
    report = json.loads((tmp_path / 'work' / 'report.json').read_text())
    assert report['seeds']['miou'] is not None
    assert report['final']['miou'] is not None


def _train(config: str, *args: str, **popen_kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, osp.join(REPO, 'tools', 'train.py'), config, *args],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, **popen_kwargs)


def _finish(config: str, *args: str) -> str:
    """Run ``config`` (tools/train.py's further ``args``) to its end; its
    console output."""
    process = _train(config, *args)
    output, _ = process.communicate(timeout=900)
    assert process.returncode == 0, output[-3000:]
    return output


def _stages(work_dir) -> dict:
    with open(osp.join(work_dir, 'manifest.json')) as file:
        return json.load(file)['stages']


def _stage_names(num_steps: int) -> list:
    """The manifest's stages of a finished run, in Algorithm 1's order:
    the seeds, then per step (0 included) f_t, Y_t mined from its output,
    g_t on Y_t and the E-step."""
    return ['seeds/cam', 'seeds/labels',
            *[f'step_{t}/{s}' for t in range(num_steps + 1) for s in (
                'unary', 'unary_labels', 'confidence', 'mine', 'pairwise',
                'refine', 'evaluate')], 'final/unary']


def _trained_on(stage_dir) -> str:
    """The label folder a stage's network trained on (from the config its
    runner dumped), relative to the work dir."""
    config = max(path for path in stage_dir.glob('*.py'))
    dataset = Config.fromfile(str(config)).train_dataloader.dataset
    while 'dataset' in dataset:
        dataset = dataset.dataset
    return osp.relpath(dataset.label_dir, stage_dir.parents[1])


# The tiny run's unary nets barely learn in 8 iterations (measured over
# randomness.seed 0, 1, 2: seeds 12.9 / 12.7 / 30.5 mIoU, the last step's
# best of unary and refined 14.3 / 14.3 / 26.5, the same numbers as the
# previous stage order; its region classifier keeps almost no region). So
# the bound only says that the labels do not collapse: twice the worst
# measured drop.
MIOU_MARGIN = 8.0


@pytest.fixture(scope='module')
def two_step_run(tmp_path_factory) -> SimpleNamespace:
    """A finished run of two tiny EM steps after step 0: its config, work
    dir and console output."""
    root = tmp_path_factory.mktemp('two_steps')
    config = _tiny_config(root)
    return SimpleNamespace(config=config, work_dir=root / 'work',
                           output=_finish(config))


def test_em_run_writes_labels_manifest_and_report(two_step_run):
    work_dir, output = two_step_run.work_dir, two_step_run.output

    stages = _stages(work_dir)
    # Algorithm 1's order, stage by stage.
    assert list(stages) == [
        'seeds/cam', 'seeds/labels',
        'step_0/unary', 'step_0/unary_labels', 'step_0/confidence',
        'step_0/mine', 'step_0/pairwise', 'step_0/refine', 'step_0/evaluate',
        'step_1/unary', 'step_1/unary_labels', 'step_1/confidence',
        'step_1/mine', 'step_1/pairwise', 'step_1/refine', 'step_1/evaluate',
        'step_2/unary', 'step_2/unary_labels', 'step_2/confidence',
        'step_2/mine', 'step_2/pairwise', 'step_2/refine', 'step_2/evaluate',
        'final/unary'] == _stage_names(num_steps=2)
    assert all(record['state'] == 'done' for record in stages.values())
    # keep_tags (the demo's default): a class of the seeds (tagged) is in
    # every mined and refined map of its image.
    for name in os.listdir(work_dir / 'step_0' / 'seeds'):
        tagged = set(np.unique(read_label(str(
            work_dir / 'step_0' / 'seeds' / name)))) - {0, 255}
        for folder in [f'step_{t}/{kind}' for t in (0, 1, 2)
                       for kind in ('labels', 'refined')]:
            assert tagged <= set(np.unique(read_label(str(
                work_dir / folder / name)))), (folder, name)
    assert 'restored_tags' in stages['step_0/refine']['outputs']['summary']
    for folder in ('step_0/seeds', *[f'step_{t}/{name}' for t in (0, 1, 2)
                                     for name in ('unary_labels', 'labels',
                                                  'refined')]):
        assert len(os.listdir(work_dir / folder)) == TINY_DATA['num_train']
    # What each network learned from: f_0 on the seeds, f_t on
    # alpha_{t-1}^p, the region classifier on f_t's output, g_t on Y_t
    # mined from it.
    assert {name: _trained_on(work_dir / name) for name in (
        'step_0/unary', 'step_0/confidence', 'step_0/pairwise',
        'step_1/unary', 'step_1/confidence', 'step_1/pairwise',
        'step_2/unary', 'final/unary')} == {
        'step_0/unary': 'step_0/seeds',
        'step_0/confidence': 'step_0/unary_labels',
        'step_0/pairwise': 'step_0/labels',
        'step_1/unary': 'step_0/refined',
        'step_1/confidence': 'step_1/unary_labels',
        'step_1/pairwise': 'step_1/labels', 'step_2/unary': 'step_1/refined',
        'final/unary': 'step_2/refined'}

    report = json.loads((work_dir / 'report.json').read_text())
    assert [step['step'] for step in report['steps']] == [0, 1, 2]
    assert report['final']['miou'] is not None
    for step in report['steps']:
        assert step['energy_refined'] is not None
        assert step['mined_miou'] is not None
        assert step['energy_mined'] is not None
        # The E-step must not make the unary prediction worse: a pairwise
        # net that starts near the identity and is trained a few
        # iterations stays within a point of it, while refined labels from
        # a broken E-step (misaligned gates, another image's or another
        # class order's scores) fall far below.
        assert step['refined_miou'] >= step['unary_miou'] - 1.0, step
    last = report['steps'][-1]
    assert max(last['refined_miou'], last['unary_miou']) >= \
        report['seeds']['miou'] - MIOU_MARGIN, report
    assert (work_dir / 'report.md').exists()
    assert (work_dir / 'report.csv').exists()
    # The console: one line per stage, progress bars, a row per step; the
    # stage runners' configs, hook tables and iteration logs go to files.
    for name in _stage_names(num_steps=2):
        assert f'[iaffinity] {name}: ' in output, name
    for step in (0, 1, 2):
        assert output.count(f'[iaffinity] step {step}: mIoU seeds') == 1
    assert 'step_0/unary: 100%' in output
    assert 'Config:' not in output and 'Hooks will be executed' not in output
    assert len(output.splitlines()) < 400
    unary_logs = list((work_dir / 'step_0' / 'unary').glob('*/*.log'))
    assert unary_logs and 'Hooks will be executed' in unary_logs[0].read_text()
    for name in ('report_miou.png', 'report_errors.png', 'report_grid.png'):
        assert (work_dir / name).exists(), name
    scalars = list(work_dir.glob('*/vis_data/scalars.json'))
    assert any('"step/refined_miou"' in path.read_text() for path in scalars)


def test_stage_checkpoints_are_marked_with_the_manifest_hash(two_step_run):
    """Chained over the stages before it: new seeds make f_0's checkpoints
    another config's, and a moved work dir keeps its marks."""
    stages = _stages(two_step_run.work_dir)
    for name in ('seeds/cam', 'step_0/unary', 'step_1/pairwise',
                 'step_2/confidence', 'final/unary'):
        folder = two_step_run.work_dir / name.replace('seeds/', 'step_0/')
        assert (folder / 'checkpoint_config_hash').read_text() == \
            stages[name]['hash'], name


def _loop(work_dir, **kwargs) -> IterativeAffinityLoop:
    """The loop on a runner stand-in (only its checks and manifest run)."""
    kwargs = {**dict(num_steps=1, cam={}, unary={}, confidence={}),
              **kwargs}
    return IterativeAffinityLoop(SimpleNamespace(work_dir=str(work_dir)),
                                 dataloader=[], **kwargs)


def _stage_loop(work_dir) -> IterativeAffinityLoop:
    """:func:`_loop` whose runner stand-in can run stages (a logger, no
    hooks)."""
    loop = _loop(work_dir)
    loop.runner.logger = logging.getLogger('test_em_loop')
    loop.runner.call_hook = lambda *args, **kwargs: None
    return loop


def test_a_label_stage_started_afresh_sets_aside_an_earlier_configs_files(
        tmp_path):
    """A label writer skips the images already in its folder (a killed
    stage resumes); after a config change (the stage's manifest entry
    deleted, as StageConfigChanged says) they are another config's and are
    moved to <folder>.stale, not reused."""
    def run_stage(stage_cfg, work):
        _stage_loop(tmp_path)._run_stage('step_0/mine', stage_cfg, work,
                                         'mine', out_dir=str(folder))

    def write(name, fail=False):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b'')
        if fail:
            raise KeyboardInterrupt  # a kill in the middle of the stage

    folder = tmp_path / 'step_0' / 'labels'
    with pytest.raises(KeyboardInterrupt):
        run_stage(dict(threshold=0.7), lambda: write('a.png', fail=True))
    # resumed with the same config: the finished image stays
    run_stage(dict(threshold=0.7), lambda: write('b.png'))
    assert sorted(os.listdir(folder)) == ['a.png', 'b.png']
    manifest = tmp_path / 'manifest.json'
    content = json.loads(manifest.read_text())
    del content['stages']['step_0/mine']
    manifest.write_text(json.dumps(content))
    run_stage(dict(threshold=0.9), lambda: write('c.png'))
    assert os.listdir(folder) == ['c.png']
    assert sorted(os.listdir(f'{folder}.stale')) == ['a.png', 'b.png']
    # killed under one config, started under another: set aside as well
    content = json.loads(manifest.read_text())
    del content['stages']['step_0/mine']
    manifest.write_text(json.dumps(content))
    with pytest.raises(KeyboardInterrupt):
        run_stage(dict(threshold=0.5), lambda: write('d.png', fail=True))
    run_stage(dict(threshold=0.6), lambda: write('e.png'))
    assert os.listdir(folder) == ['e.png']
    assert os.listdir(f'{folder}.stale1') == ['c.png']  # deleted record
    assert os.listdir(f'{folder}.stale2') == ['d.png']  # killed, other cfg


def test_rank_0_failing_to_set_aside_stops_the_other_ranks(tmp_path,
                                                          monkeypatch):
    """Rank 0 sends whether setting a stage's folder aside failed: then it
    raises its error, and the other ranks (which would otherwise wait at a
    barrier forever) raise one naming the stage, before the stage runs."""
    def fail(folder):
        raise PermissionError(f'cannot move {folder}')

    sent = []
    monkeypatch.setattr(em_loop, 'set_aside_stale_folder', fail)
    monkeypatch.setattr(em_loop, 'broadcast_object_list',
                        lambda data: sent.append(list(data)))
    folder = str(tmp_path / 'step_0' / 'labels')
    work = []
    with pytest.raises(PermissionError, match='cannot move'):
        _stage_loop(tmp_path)._run_stage('step_0/mine', {}, work.append,
                                         'mine', out_dir=folder)
    assert sent == [[f'PermissionError: cannot move {folder}']]

    def receive(data):  # rank 1 gets rank 0's report
        data[:] = sent[0]

    monkeypatch.setattr(em_loop, 'is_main_process', lambda: False)
    monkeypatch.setattr(em_loop, 'broadcast_object_list', receive)
    loop = _stage_loop(tmp_path)
    with pytest.raises(RuntimeError, match=r"stage 'step_0/mine' failed on "
                       r'rank 0 \(PermissionError: cannot move'):
        loop._run_stage('step_0/mine', {}, work.append, 'mine',
                        out_dir=folder)
    assert work == [] and 'step_0/mine' not in loop.manifest.stages


def test_on_main_process_without_failure_runs_work_on_rank_0_only(
        monkeypatch):
    sent, work = [], []
    monkeypatch.setattr(em_loop, 'broadcast_object_list',
                        lambda data: sent.append(list(data)))
    em_loop.on_main_process('step_0/mine', lambda: work.append('rank 0'))
    monkeypatch.setattr(em_loop, 'is_main_process', lambda: False)
    em_loop.on_main_process('step_0/mine', lambda: work.append('rank 1'))
    assert work == ['rank 0'] and sent == [[None], [None]]


def test_a_running_record_of_an_older_manifest_is_resumed_by_its_hash(
        tmp_path):
    manifest = Manifest(str(tmp_path / 'manifest.json'))
    manifest.mark_running('step_0/mine', 'new')
    assert manifest.started_with('step_0/mine', 'new')
    assert not manifest.started_with('step_0/mine', 'other')
    assert not manifest.started_with('step_0/refine', 'new')
    # a version-3 record keeps its hash as legacy_hash (over absolute paths)
    manifest.stages['step_0/mine'] = dict(state='running', legacy_hash='old')
    assert manifest.started_with('step_0/mine', 'new', legacy_hash='old')
    assert not manifest.started_with('step_0/mine', 'new', legacy_hash='x')


def test_work_dir_of_the_old_stage_order_is_refused(tmp_path):
    """A manifest of the previous order (version 2: g_0 trained on the
    seeds): the loop stops at once, naming the manifest, instead of reusing
    its stages in another order."""
    manifest = tmp_path / 'manifest.json'
    done = dict(state='done', hash='0', outputs={}, metrics={})
    manifest.write_text(json.dumps(dict(version=2, stages=dict.fromkeys(
        ('seeds/cam', 'seeds/labels', 'step_0/unary', 'step_0/pairwise',
         'step_0/refine'), done))))
    with pytest.raises(OutdatedManifest,
                       match=f'{re.escape(str(manifest))}.*new --work-dir'):
        _loop(tmp_path)


def test_old_mining_mode_and_missing_classifier_are_reported(tmp_path):
    with pytest.raises(ValueError, match=r"train_cfg.mining.mode "
                       r"'confidence'; use one of \('relabel', 'confirm'"):
        _loop(tmp_path, mining=dict(mode='confidence'))
    for mode in ('relabel', 'confirm'):
        with pytest.raises(ValueError, match='train_cfg.confidence is '
                           'required'):
            _loop(tmp_path, mining=dict(mode=mode), confidence=None)
    assert _loop(tmp_path).unary_targets_dir(2) == str(
        tmp_path / 'step_1' / 'refined')
    mined = _loop(tmp_path, unary_labels='mined')
    assert [osp.relpath(mined.unary_targets_dir(step), tmp_path)
            for step in (0, 1, 2)] == ['step_0/seeds', 'step_0/labels',
                                       'step_1/labels']


@pytest.mark.parametrize('key, value, requirement', [
    *(('infer_short_edge', value, 'be a positive number of pixels or None')
      for value in (0, -5, 160.0, '160', True)),
    *(('refined_min_confidence', value, 'be in (0, 1] or None')
      for value in (0, -0.5, 1.5, '0.7', True)),
])
def test_bad_loop_setting_is_named(tmp_path, key, value, requirement):
    with pytest.raises(ValueError, match=re.escape(
            f'train_cfg.{key} must {requirement}, got {value!r}')):
        _loop(tmp_path, **{key: value})


def _finished_outputs(work_dir) -> dict:
    """Modification times of every label and final weights file: the
    outputs of finished stages (and of finished images of a label stage)."""
    paths = [*work_dir.glob('step_*/**/*.png'),
             *work_dir.glob('**/final_weights.pth')]
    return {path: path.stat().st_mtime_ns for path in paths}


def _newest_log(stage_dir) -> str:
    """The log of the latest runner of a stage (``<timestamp>/*.log``)."""
    run = max(path for path in stage_dir.iterdir() if path.is_dir())
    return (run / f'{run.name}.log').read_text()


def _reached(marker) -> bool:
    """A stage's first checkpoint (``last_checkpoint``), or a label folder
    with its first file."""
    if marker.name == 'last_checkpoint':
        return marker.exists()
    return marker.is_dir() and any(
        name.endswith('.png') for name in os.listdir(marker))


def _kill_when(config: str, log_path, marker) -> None:
    """Start the run and SIGKILL it (its whole process group) as soon as
    ``marker`` is :func:`_reached`."""
    # The log goes to a file: an undrained pipe would block the run.
    with open(log_path, 'w') as log:
        process = subprocess.Popen(
            [sys.executable, osp.join(REPO, 'tools', 'train.py'), config],
            cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
    deadline = time.time() + 600
    while not _reached(marker):
        assert process.poll() is None, log_path.read_text()[-3000:]
        assert time.time() < deadline, f'{marker} never appeared'
        time.sleep(0.005)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def test_killed_run_resumes_without_redoing_finished_stages(tmp_path):
    """One run killed three times, each time started again with the same
    command: SIGKILL while the seeds are written, mid unary training of step
    0 and mid final unary training (after every EM step finished). Each new
    start skips the stages that had finished, a half-trained network
    resumes from its checkpoint, and nothing written before a kill is
    written again."""
    config = _tiny_config(tmp_path, iters=12, num_steps=0)
    work_dir = tmp_path / 'work'
    markers = ('step_0/seeds', 'step_0/unary/last_checkpoint',
               'final/unary/last_checkpoint')
    finished, outputs, logs = [], {}, []
    for kill, marker in enumerate(markers):
        log = tmp_path / f'killed_{kill}.log'
        _kill_when(config, log, work_dir / marker)
        logs.append(log)
        finished.append([name for name, record in _stages(work_dir).items()
                         if record['state'] == 'done'])
        # The first mtime seen of each file: a rewrite after it shows.
        outputs = {**_finished_outputs(work_dir), **outputs}
        if marker.endswith('last_checkpoint'):
            assert marker.rsplit('/', 1)[0] not in finished[-1]
    output = _finish(config)

    # Started again after kill k: the stages done at kill k are skipped.
    runs = [log.read_text() for log in logs[1:]] + [output]
    for done, run in zip(finished, runs):
        for name in done:
            assert f'[iaffinity] {name}: done, skipped' in run, name
    for marker in markers[1:]:
        # Killed mid-training: this stage's next runner resumed from the
        # checkpoint (interval 2) instead of starting at iteration 1.
        log = _newest_log(work_dir / marker.rsplit('/', 1)[0])
        resumed = re.search(r'resumed epoch: 0, iter: (\d+)', log)
        assert resumed and int(resumed.group(1)) >= 2, log[-3000:]
        assert 'Iter(train) [ 1/12]' not in log
    # Labels and weights written before a kill were not rewritten.
    assert outputs
    assert {path: path.stat().st_mtime_ns for path in outputs} == outputs
    stages = _stages(work_dir)
    assert list(stages) == _stage_names(num_steps=0)
    assert all(record['state'] == 'done' for record in stages.values())


def test_moved_work_dir_resumes_without_retraining(tmp_path):
    """A finished run moved (``mv``) to another folder and resumed there
    with --work-dir: every stage is skipped, no label or weights file is
    written again, and the manifest keeps its records, naming no path of
    the old place."""
    config = _tiny_config(tmp_path, iters=2, num_steps=0)
    _finish(config)
    old, new = tmp_path / 'work', tmp_path / 'moved' / 'renamed'
    stages = _stages(old)
    new.parent.mkdir()
    shutil.move(str(old), str(new))
    outputs = _finished_outputs(new)

    output = _finish(config, '--work-dir', str(new))
    for name in _stage_names(num_steps=0):
        assert f'[iaffinity] {name}: done, skipped' in output, name
    assert outputs
    assert {path: path.stat().st_mtime_ns for path in outputs} == outputs
    assert _stages(new) == stages
    assert str(old) not in (new / 'manifest.json').read_text()
    assert not old.exists()


def _stand_in_loop(work_dir) -> IterativeAffinityLoop:
    """:func:`_loop` whose runner also logs and takes hook calls, so that
    its stages can run."""
    loop = _loop(work_dir)
    loop.runner.logger = logging.getLogger(__name__)
    loop.runner.call_hook = lambda *args, **kwargs: None
    return loop


def _skip_stages(loop: IterativeAffinityLoop, work_dir) -> list:
    """Two chained stages on ``loop``, the second hashing the first's
    recorded weights and a label folder; fails if either has to run."""
    def never():
        raise AssertionError('a finished stage ran again')
    cam = loop._run_stage('seeds/cam', dict(lr=0.1), never, 'cam')
    unary = loop._run_stage('step_0/unary',
                            [cam, str(work_dir / 'step_0' / 'seeds')],
                            never, 'unary')
    return [cam, unary]


def test_version_3_work_dir_is_migrated_then_movable(tmp_path):
    """A work dir that version 3 (config hashes over absolute paths)
    recorded: resumed in place, its stages are skipped and given version
    4's hashes; moved after that, they are skipped again."""
    work_dir, moved = tmp_path / 'a', tmp_path / 'b'
    work_dir.mkdir()
    cam = dict(weights=str(work_dir / 'step_0' / 'cam' / 'final.pth'))
    cam_hash = config_hash(dict(lr=0.1), '')
    unary_hash = config_hash(
        [cam, str(work_dir / 'step_0' / 'seeds')], cam_hash)
    (work_dir / 'manifest.json').write_text(json.dumps(dict(
        version=3, stages={
            'seeds/cam': dict(state='done', hash=cam_hash, outputs=cam,
                              metrics={}),
            'step_0/unary': dict(state='done', hash=unary_hash, outputs=dict(
                weights=str(work_dir / 'unary.pth')), metrics={})})))
    assert _skip_stages(_stand_in_loop(work_dir), work_dir) == [
        cam, dict(weights=str(work_dir / 'unary.pth'))]
    content = json.loads((work_dir / 'manifest.json').read_text())
    assert content['version'] == VERSION
    assert content['stages']['seeds/cam']['outputs'] == dict(
        weights='{work_dir}/step_0/cam/final.pth')
    assert 'legacy_hash' not in str(content)

    shutil.move(str(work_dir), str(moved))
    assert _skip_stages(_stand_in_loop(moved), moved) == [
        dict(weights=str(moved / 'step_0' / 'cam' / 'final.pth')),
        dict(weights=str(moved / 'unary.pth'))]


def test_changed_config_of_finished_stage_is_reported(two_step_run,
                                                      tmp_path):
    """The CAM's lr changed after the run finished: the run stops at the
    first stage, naming it, and leaves the finished run as it was."""
    manifest = two_step_run.work_dir / 'manifest.json'
    before = manifest.read_bytes(), _finished_outputs(two_step_run.work_dir)
    cfg = Config.fromfile(two_step_run.config)
    cfg.train_cfg.cam.optim_wrapper.optimizer.lr = 0.5
    changed = str(tmp_path / 'changed_lr.py')
    cfg.dump(changed)
    process = _train(changed)
    output, _ = process.communicate(timeout=900)
    assert process.returncode != 0
    assert "stage 'seeds/cam'" in output and 'config hash' in output
    assert (manifest.read_bytes(),
            _finished_outputs(two_step_run.work_dir)) == before


def _same_files(folder, other) -> bool:
    return sorted(os.listdir(folder)) == sorted(os.listdir(other)) and all(
        (folder / name).read_bytes() == (other / name).read_bytes()
        for name in os.listdir(folder))


# The ablation and 2-process runs check wiring, which step 0 has whole
# (its unary net, mining, pairwise net and E-step): they stop after it.
def test_ablations_without_pairwise_net_or_region_classifier(tmp_path):
    """Table 8 (no pairwise net) with mining by the 80 % rule alone."""
    config = _tiny_config(tmp_path, num_steps=0)
    cfg = Config.fromfile(config)
    cfg.train_cfg.pairwise = None
    cfg.train_cfg.mining.mode = 'majority'
    cfg.train_cfg.keep_tags = False  # else lost tags take their seed pixels
    cfg.dump(config)
    _finish(config)
    work_dir = tmp_path / 'work'
    stages = _stages(work_dir)
    assert list(stages) == _stage_names(num_steps=0)
    assert stages['step_0/pairwise']['outputs'] == {'weights': None}
    assert not (work_dir / 'step_0' / 'pairwise').exists()
    # Without a pairwise net the refined labels are the unary ones.
    assert _same_files(work_dir / 'step_0' / 'refined',
                       work_dir / 'step_0' / 'unary_labels')
    assert stages['step_0/confidence']['outputs'] == {'weights': None}
    report = json.loads((work_dir / 'report.json').read_text())
    assert [step['energy_refined'] for step in report['steps']] == [None]
    assert [step['energy_mined'] for step in report['steps']] == [None]


def test_no_mining_ablation_copies_the_unary_output(tmp_path):
    """Table 6 (no mining): Y_t is f_t's output itself, and g_t trains on
    it."""
    config = _tiny_config(tmp_path, num_steps=0)
    cfg = Config.fromfile(config)
    cfg.train_cfg.mining.mode = 'none'
    cfg.train_cfg.keep_tags = False  # else lost tags take their seed pixels
    cfg.dump(config)
    _finish(config)
    work_dir = tmp_path / 'work'
    assert list(_stages(work_dir)) == _stage_names(num_steps=0)
    assert _same_files(work_dir / 'step_0' / 'labels',
                       work_dir / 'step_0' / 'unary_labels')
    assert _trained_on(work_dir / 'step_0' / 'pairwise') == 'step_0/labels'


def test_kept_objects_persist_into_the_next_mined_labels(tmp_path):
    """mining.keep_objects: Y_1 keeps every object pixel of Y_0, also where
    the 80 % rule on f_1's output has none. Y_0 is painted one tagged class
    all over after step 0, so that it is sure to have such pixels."""
    config = _tiny_config(tmp_path, num_steps=0)
    cfg = Config.fromfile(config)
    cfg.train_cfg.mining.update(mode='majority', keep_objects=True)
    cfg.train_cfg.keep_tags = False
    cfg.train_cfg.train_final = False
    cfg.dump(config)
    _finish(config)
    work_dir = tmp_path / 'work'
    for path in (work_dir / 'step_0' / 'labels').iterdir():
        tagged = set(np.unique(read_label(str(
            work_dir / 'step_0' / 'seeds' / path.name)))) - {0, 255}
        labels = read_label(str(path))
        write_label(str(path), np.full_like(labels, min(tagged)))
    _finish(config, '--cfg-options', 'train_cfg.num_steps=1')
    cache, = (work_dir / 'superpixels').iterdir()
    lost = 0
    for path in (work_dir / 'step_1' / 'labels').iterdir():
        mined = read_label(str(path))
        with np.load(cache / path.name.replace('.png', '.npz')) as data:
            proposal = superpixel_majority(read_label(str(
                work_dir / 'step_1' / 'unary_labels' / path.name)),
                data[NPZ_KEY])
        assert ((mined != 0) & (mined != 255)).all(), path.name
        lost += ((proposal == 0) | (proposal == 255)).sum()
    assert lost > 0  # else Y_1 would have been all objects by itself


def _state_dict(weights) -> dict:
    return torch.load(str(weights), map_location='cpu')['state_dict']


def _stopped_by_a_changed_stage(config: str, option: str) -> str:
    """The console output of a finished ``config`` run again with one
    ``--cfg-options`` entry, which must stop it."""
    process = _train(config, '--cfg-options', option)
    output, _ = process.communicate(timeout=900)
    assert process.returncode != 0
    return output


def _same_weights(weights, other) -> bool:
    first, second = _state_dict(weights), _state_dict(other)
    return first.keys() == second.keys() and all(
        torch.equal(first[key], second[key]) for key in first)


def test_warm_started_unary_nets_start_from_their_predecessor(tmp_path):
    """unary_warm_start: f_1 starts from f_0 and the final net from f_1.
    With no iteration to train, each ends with its predecessor's
    weights."""
    config = _tiny_config(tmp_path, num_steps=1)
    cfg = Config.fromfile(config)
    cfg.train_cfg.unary_warm_start = dict(
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=0))
    cfg.train_cfg.final_unary = dict()
    cfg.dump(config)
    _finish(config)
    work_dir = tmp_path / 'work'
    f_0, f_1, final = (work_dir / stage / 'unary' / 'final_weights.pth'
                       for stage in ('step_0', 'step_1', 'final'))
    assert _same_weights(f_0, f_1)
    assert _same_weights(f_1, final)
    # Switched off on the finished run: step 0 is reused, f_1 is another
    # config's and is reported, not silently reused.
    output = _stopped_by_a_changed_stage(config,
                                         'train_cfg.unary_warm_start=None')
    assert "stage 'step_1/unary'" in output
    assert "step_0/unary: done, skipped" in output


def test_e_step_options_act_and_are_hashed_where_they_act(tmp_path):
    """refined_min_confidence leaves the refined labels' unsure pixels
    unknown (f_t's output keeps every pixel); it and superpixel_pooling,
    switched over a finished run, report the E-step as another config's
    and reuse every stage before it (the banding and pooling themselves:
    test_spn_refiner.py)."""
    config = _tiny_config(tmp_path, num_steps=0)
    cfg = Config.fromfile(config)
    cfg.train_cfg.train_final = False
    cfg.train_cfg.refined_min_confidence = 0.999
    cfg.dump(config)
    _finish(config)
    step_0 = tmp_path / 'work' / 'step_0'
    unknown = {folder: sum((read_label(str(path)) == 255).sum()
                           for path in (step_0 / folder).glob('*.png'))
               for folder in ('refined', 'unary_labels')}
    assert unknown['refined'] > 0 and unknown['unary_labels'] == 0
    for option in ('train_cfg.superpixel_pooling=True',
                   'train_cfg.refined_min_confidence=None'):
        output = _stopped_by_a_changed_stage(config, option)
        assert "stage 'step_0/refine'" in output, option
        assert 'step_0/pairwise: done, skipped' in output, option


def test_two_gloo_processes_shard_labels_and_finish(tmp_path):
    """tools/dist_train.sh on CPU: every label written once, run complete."""
    config = _tiny_config(tmp_path, num_steps=0)
    env = dict(os.environ, PORT=str(29500 + os.getpid() % 1000))
    process = subprocess.run(
        ['bash', osp.join(REPO, 'tools', 'dist_train.sh'), config, '2'],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, timeout=900)
    assert process.returncode == 0, process.stdout[-3000:]
    work_dir = tmp_path / 'work'
    stages = _stages(work_dir)
    # the same stages, in the same order, as a 1-process run
    assert list(stages) == _stage_names(num_steps=0)
    assert all(record['state'] == 'done' for record in stages.values())
    expected = sorted(f'train_{i:05d}.png'
                      for i in range(TINY_DATA['num_train']))
    for folder in ('seeds', 'unary_labels', 'labels', 'refined'):
        assert sorted(os.listdir(work_dir / 'step_0' / folder)) == \
            expected, folder
    assert json.loads((work_dir / 'report.json').read_text())['final'][
        'miou'] is not None
