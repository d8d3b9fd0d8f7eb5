"""manifest.json: stage states survive restarts; config changes are caught."""
import json

import pytest

from iaffinity_plugins.engine.manifest import (Manifest, StageConfigChanged,
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
    assert json.loads(path.read_text())['stages']['x']['metrics'] == {
        'miou': 1.0}
