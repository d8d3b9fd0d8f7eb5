"""manifest.json: stage states survive restarts; config changes are caught."""
import json

import pytest

from iaffinity_plugins.engine.manifest import (VERSION, Manifest,
                                               OutdatedManifest,
                                               StageConfigChanged,
                                               config_hash)


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
    assert content['version'] == VERSION == 3


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
    assert manifest.is_done('step_0/unary', 'h')
    manifest.mark_running('step_0/pairwise', 'h2')
    assert json.loads(path.read_text())['version'] == VERSION
