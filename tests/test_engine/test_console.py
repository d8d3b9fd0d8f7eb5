"""The console of an EM run: quiet runners, stage lines, progress hook."""
import io
import logging
from types import SimpleNamespace
from unittest import mock

from mmengine.logging import MMLogger

from iaffinity_plugins.engine.console import (TrainProgressHook, announce,
                                              quiet_console)


def _logger(name, tmp_path):
    logger = MMLogger.get_instance(name, log_file=str(tmp_path / 'run.log'))
    console = io.StringIO()
    for handler in logger.handlers:
        if type(handler) is logging.StreamHandler:
            handler.setStream(console)
    return logger, console


def test_quiet_console_keeps_everything_in_the_log_file(tmp_path):
    logger, console = _logger('console_test_quiet', tmp_path)
    quiet_console(logger)
    logger.info('Config: a long dump')
    logger.warning('a real warning')
    logger.warning('"FileClient" will be deprecated in future.')
    assert 'Config' not in console.getvalue()
    assert 'a real warning' in console.getvalue()
    assert 'FileClient' not in console.getvalue()
    for handler in logger.handlers:
        handler.flush()
    log = (tmp_path / 'run.log').read_text()
    assert 'Config: a long dump' in log and 'FileClient' in log


def test_announce_shows_a_line_once_quiet_or_not(tmp_path, capsys):
    quiet, quiet_out = _logger('console_test_announce_quiet', tmp_path)
    quiet_console(quiet)
    announce(quiet, '[iaffinity] seeds/cam: train')
    assert capsys.readouterr().out == '[iaffinity] seeds/cam: train\n'
    loud, loud_out = _logger('console_test_announce_loud', tmp_path)
    announce(loud, '[iaffinity] step_0/mine: write')
    assert capsys.readouterr().out == ''  # its own handler showed it
    assert loud_out.getvalue().count('step_0/mine') == 1


def test_progress_hook_follows_the_training_iterations():
    stream = io.StringIO()
    runner = SimpleNamespace(max_iters=40, iter=20)
    with mock.patch('sys.stderr', stream):
        hook = TrainProgressHook(desc='step_0/unary')
        hook.before_train(runner)
        for index in range(20):
            hook.after_train_iter(runner, index,
                                  outputs=dict(loss=0.25 + index))
        hook.after_train(runner)
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith('step_0/unary:') and '22/40' in lines[0]
    assert '40/40' in lines[-1] and 'loss 19.250' in lines[-1]
