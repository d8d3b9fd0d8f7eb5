"""manifest.json: stage states survive restarts; config changes are caught;
a moved work dir keeps its hashes and outputs."""
import json
import shutil

import pytest

from iaffinity_plugins.engine.manifest import (VERSION, Manifest,
                                               OutdatedManifest,
                                               StageConfigChanged,
                                               config_hash, relative_paths,
                                               resolved_paths)


def test_done_stage_is_reloaded_with_its_outputs(tmp_path):
    path = str(tmp_path / 'manifest.json')
    manifest = Manifest(path)
    stage_hash = config_hash({'lr': 0.1})
    manifest.mark_running('step_0/unary', stage_hash)
    assert not Manifest(path).is_done('step_0/unary', stage_hash)

    manifest.mark_done('step_0/unary', stage_hash, outputs={'weights': 'w'})
    reloaded = Manifest(path)
    assert reloaded.is_done('step_0/unary', stage_hash)
    assert reloaded.record('step_0/unary')['outputs'] == {'weights': 'w'}


def test_changed_config_of_a_finished_stage_is_reported(tmp_path):
    manifest = Manifest(str(tmp_path / 'manifest.json'))
    manifest.mark_done('seeds/cam', config_hash({'lr': 0.1}))
    with pytest.raises(StageConfigChanged, match='seeds/cam'):
        manifest.is_done('seeds/cam', config_hash({'lr': 0.2}))


def test_hash_ignores_key_order_but_not_values():
    assert config_hash({'a': 1, 'b': 2}) == config_hash({'b': 2, 'a': 1})
    assert config_hash({'a': 1}) != config_hash({'a': 2})


def test_corrupt_manifest_names_the_file(tmp_path):
    path = tmp_path / 'manifest.json'
    path.write_text('{"stages": ')
    with pytest.raises(RuntimeError, match='manifest.json'):
        Manifest(str(path))


def test_written_manifest_is_valid_json(tmp_path):
    path = tmp_path / 'manifest.json'
    Manifest(str(path)).mark_done('x', 'h', metrics={'miou': 1.0})
    content = json.loads(path.read_text())
    assert content['stages']['x']['metrics'] == {'miou': 1.0}
    assert content['version'] == VERSION == 4


def _old_manifest(path, stages, version=1):
    done = dict(state='done', hash='h', outputs={}, metrics={})
    path.write_text(json.dumps(dict(version=version, stages=dict.fromkeys(
        stages, done))))


@pytest.mark.parametrize('version, old_stage', [
    # refine -> confidence -> mine inside step 0, or the final net right
    # after the seeds (num_steps=0)
    (1, 'step_0/confidence'), (1, 'step_0/mine'), (1, 'final/unary'),
    # g_0 trained on the seeds, nothing mined at step 0
    (2, 'step_0/pairwise'), (2, 'step_0/refine'), (2, 'final/unary')])
def test_manifest_of_an_old_stage_order_is_refused(tmp_path, version,
                                                   old_stage):
    """An older work dir that got past f_0 cannot go on in today's order:
    the error names the manifest and asks for a new work dir."""
    path = tmp_path / 'manifest.json'
    step_0 = [] if old_stage == 'final/unary' else ['step_0/unary']
    _old_manifest(path, ['seeds/cam', 'seeds/labels', *step_0, old_stage],
                  version)
    with pytest.raises(OutdatedManifest) as error:
        Manifest(str(path))
    assert str(path) in str(error.value)
    assert 'new --work-dir' in str(error.value) and old_stage in str(
        error.value)


@pytest.mark.parametrize('version', [1, 2])
def test_old_manifest_before_the_orders_differ_is_reused(tmp_path, version):
    """Up to f_0 every order runs the same stages."""
    path = tmp_path / 'manifest.json'
    _old_manifest(path, ['seeds/cam', 'seeds/labels', 'step_0/unary'],
                  version)
    manifest = Manifest(str(path))
    assert manifest.is_done('step_0/unary', 'new', legacy_hash='h')
    manifest.mark_running('step_0/pairwise', 'h2')
    content = json.loads(path.read_text())
    assert content['version'] == VERSION
    assert content['stages']['step_0/unary']['hash'] == 'new'


def test_paths_inside_the_work_dir_are_written_from_a_token():
    cfg = dict(labels='/runs/a/step_0/seeds', root='/runs/a',
               data='/data/voc', sibling='/runs/ab/x', name='a',
               pipeline=[('/runs/a/superpixels', 1)])
    relative = relative_paths(cfg, '/runs/a')
    assert relative == dict(labels='{work_dir}/step_0/seeds',
                            root='{work_dir}', data='/data/voc',
                            sibling='/runs/ab/x', name='a',
                            pipeline=[['{work_dir}/superpixels', 1]])
    assert resolved_paths(relative, '/runs/b') == dict(
        cfg, labels='/runs/b/step_0/seeds', root='/runs/b',
        pipeline=[['/runs/b/superpixels', 1]])


def _stage_cfg(work_dir) -> list:
    """A stage config naming a label folder in ``work_dir`` and pretrained
    weights outside it."""
    return [dict(checkpoint='/weights/lite0.pth'),
            str(work_dir / 'step_0' / 'seeds')]


def test_moved_work_dir_keeps_hashes_and_finds_its_outputs(tmp_path):
    """``mv a b``: the stage's hash in b equals a's, and its recorded
    weights are read in b."""
    old, new = tmp_path / 'a', tmp_path / 'b'
    old.mkdir()
    manifest = Manifest(str(old / 'manifest.json'))
    stage_hash = manifest.stage_hash(_stage_cfg(old), '')
    manifest.mark_done('step_0/unary', stage_hash, outputs=dict(
        weights=str(old / 'step_0' / 'unary' / 'final_weights.pth'),
        pretrained='/weights/lite0.pth'))
    shutil.move(str(old), str(new))

    moved = Manifest(str(new / 'manifest.json'))
    moved_hash = moved.stage_hash(_stage_cfg(new), '')
    assert moved_hash == stage_hash
    assert moved.is_done('step_0/unary', moved_hash)
    assert moved.record('step_0/unary')['outputs'] == dict(
        weights=str(new / 'step_0' / 'unary' / 'final_weights.pth'),
        pretrained='/weights/lite0.pth')
    assert str(old) not in (new / 'manifest.json').read_text()
    # A path outside the work dir is hashed as it is.
    assert moved.stage_hash([dict(checkpoint='/weights/other.pth'),
                             str(new / 'step_0' / 'seeds')], '') != moved_hash


def _version_3_manifest(work_dir) -> Manifest:
    """A version-3 manifest of one finished stage in ``work_dir``, hashed
    over absolute paths as version 3 did; loaded."""
    (work_dir / 'manifest.json').write_text(json.dumps(dict(
        version=3, stages={'step_0/unary': dict(
            state='done', hash=config_hash(_stage_cfg(work_dir), ''),
            outputs=dict(weights=str(work_dir / 'unary.pth')),
            metrics={})})))
    return Manifest(str(work_dir / 'manifest.json'))


def test_version_3_manifest_of_the_same_config_is_migrated(tmp_path):
    """Its hash matches the current config by version 3's rule: the stage is
    done, and the manifest now holds version 4's hash and relative
    paths."""
    manifest = _version_3_manifest(tmp_path)
    stage_hash = manifest.stage_hash(_stage_cfg(tmp_path), '')
    assert manifest.is_done('step_0/unary', stage_hash,
                            config_hash(_stage_cfg(tmp_path), ''))
    content = json.loads((tmp_path / 'manifest.json').read_text())
    assert content == dict(version=VERSION, stages={'step_0/unary': dict(
        state='done', hash=stage_hash,
        outputs=dict(weights='{work_dir}/unary.pth'), metrics={})})
    assert Manifest(str(tmp_path / 'manifest.json')).is_done(
        'step_0/unary', stage_hash)


def test_version_3_manifest_that_differs_is_refused(tmp_path):
    """Moved after version 3 wrote it (its absolute paths no longer match),
    or its config changed: the error names the manifest and says what to
    do, and the manifest is left as it was."""
    old, new = tmp_path / 'a', tmp_path / 'b'
    old.mkdir()
    _version_3_manifest(old)
    shutil.move(str(old), str(new))
    before = (new / 'manifest.json').read_bytes()
    manifest = Manifest(str(new / 'manifest.json'))
    for legacy_hash in (config_hash(_stage_cfg(new), ''), None):
        with pytest.raises(StageConfigChanged) as error:
            manifest.is_done('step_0/unary',
                             manifest.stage_hash(_stage_cfg(new), ''),
                             legacy_hash)
        assert str(new / 'manifest.json') in str(error.value)
        assert 'move it back, resume it there once' in str(error.value)
    assert (new / 'manifest.json').read_bytes() == before
