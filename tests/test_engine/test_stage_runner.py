"""A stage resumes from a checkpoint that really exists."""
from iaffinity_plugins.engine.stage_runner import resumable_checkpoint


def test_resumes_from_newest_existing_checkpoint(tmp_path):
    assert resumable_checkpoint(str(tmp_path / 'missing')) is None
    assert resumable_checkpoint(str(tmp_path)) is None
    (tmp_path / 'iter_4.pth').write_bytes(b'x')
    (tmp_path / 'iter_12.pth').write_bytes(b'x')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_4.pth'))
    assert resumable_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_4.pth')
    # Killed after the old checkpoint was removed, before last_checkpoint
    # was updated: the newest file on disk is used instead.
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_2.pth'))
    assert resumable_checkpoint(str(tmp_path)) == str(tmp_path /
                                                      'iter_12.pth')
