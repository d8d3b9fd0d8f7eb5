"""A stage resumes from a complete checkpoint that really exists."""
import torch

from iaffinity_plugins.engine.stage_runner import (
    build_stage_runner_cfg, resumable_checkpoint, set_aside_stale_checkpoints)


def _save(path, step):
    torch.save({'meta': {'iter': step}, 'state_dict': {}}, str(path))


def test_resumes_from_newest_existing_checkpoint(tmp_path):
    assert resumable_checkpoint(str(tmp_path / 'missing')) is None
    assert resumable_checkpoint(str(tmp_path)) is None
    _save(tmp_path / 'iter_4.pth', 4)
    _save(tmp_path / 'iter_12.pth', 12)
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_4.pth'))
    assert resumable_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_4.pth')
    # Killed after the old checkpoint was removed, before last_checkpoint
    # was updated: the newest file on disk is used instead.
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_2.pth'))
    assert resumable_checkpoint(str(tmp_path)) == str(tmp_path /
                                                      'iter_12.pth')


def test_half_written_checkpoint_is_never_resumed_from(tmp_path):
    """Killed while mmengine wrote iter_14.pth (after it had removed the
    previous one): the newest complete checkpoint is used."""
    _save(tmp_path / 'iter_12.pth', 12)
    _save(tmp_path / 'iter_14.pth', 14)
    data = (tmp_path / 'iter_14.pth').read_bytes()
    (tmp_path / 'iter_14.pth').write_bytes(data[:len(data) // 2])
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_10.pth'))
    assert resumable_checkpoint(str(tmp_path)) == str(tmp_path /
                                                      'iter_12.pth')
    (tmp_path / 'iter_12.pth').write_bytes(b'')
    assert resumable_checkpoint(str(tmp_path)) is None


def test_stage_keeps_two_checkpoints_at_least(tmp_path):
    """mmengine removes the oldest kept checkpoint before writing the next:
    with one kept, a kill during the save would leave none."""
    runtime = dict(default_hooks=dict(checkpoint=dict(
        type='CheckpointHook', interval=2, max_keep_ckpts=1)),
        train_dataloader=dict(dataset=dict(type='X')))
    stage = dict(model=dict(type='Y'),
                 train_dataloader=dict(dataset=dict(type='X')))
    cfg = build_stage_runner_cfg(stage, runtime, str(tmp_path), 'a/b', None)
    assert cfg.default_hooks.checkpoint.max_keep_ckpts == 2
    runtime['default_hooks']['checkpoint']['max_keep_ckpts'] = -1  # keep all
    cfg = build_stage_runner_cfg(stage, runtime, str(tmp_path), 'a/b', None)
    assert cfg.default_hooks.checkpoint.max_keep_ckpts == -1


def test_a_fresh_stage_starts_from_init_weights_a_resumed_one_from_its_own(
        tmp_path):
    """init_weights (a warm start) is mmengine's load_from without resume
    while the stage has no checkpoint; once it has one, it resumes from it
    and the init weights are not loaded again."""
    runtime = dict(train_dataloader=dict(dataset=dict(type='X')))
    stage = dict(model=dict(type='Y'),
                 train_dataloader=dict(dataset=dict(type='X')))
    start = str(tmp_path / 'previous.pth')
    cfg = build_stage_runner_cfg(stage, runtime, str(tmp_path), 'a/b', None,
                                 init_weights=start)
    assert (cfg.resume, cfg.load_from) == (False, start)
    _save(tmp_path / 'iter_2.pth', 2)
    cfg = build_stage_runner_cfg(stage, runtime, str(tmp_path), 'a/b', None,
                                 init_weights=start)
    assert (cfg.resume, cfg.load_from) == (True, str(tmp_path / 'iter_2.pth'))


def test_checkpoints_of_another_config_are_set_aside(tmp_path):
    """A stage re-run after a config change trains again: the old config's
    checkpoints are moved aside (kept), its own are resumed from."""
    _save(tmp_path / 'iter_4.pth', 4)
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_4.pth'))
    (tmp_path / 'final_weights.pth').write_text('old')
    # no marker: from before this rule, or another config
    set_aside_stale_checkpoints(str(tmp_path), 'a')
    assert resumable_checkpoint(str(tmp_path)) is None
    assert (tmp_path / 'stale_checkpoints' / 'unknown' /
            'iter_4.pth').is_file()
    assert (tmp_path / 'final_weights.pth').is_file()
    _save(tmp_path / 'iter_8.pth', 8)
    set_aside_stale_checkpoints(str(tmp_path), 'a')  # same config: resume
    assert resumable_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_8.pth')
    set_aside_stale_checkpoints(str(tmp_path), 'b')
    assert resumable_checkpoint(str(tmp_path)) is None
    assert (tmp_path / 'stale_checkpoints' / 'a' / 'iter_8.pth').is_file()
    assert (tmp_path / 'checkpoint_config_hash').read_text() == 'b'
