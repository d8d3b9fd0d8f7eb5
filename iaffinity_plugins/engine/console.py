"""What an EM run shows on the console, and what only goes to log files.

An EM run builds one mmengine Runner per network it trains (about a dozen
for the demo). Each would print its config, its hook table and its
iteration lines. Here:

- :class:`QuietConsoleRunner` keeps a runner's full log in its log file
  (``<work_dir>/<timestamp>/<timestamp>.log``) and shows only warnings and
  errors on the console. Every stage runs in one, and the EM configs select
  it for the outer run (``runner_type = 'QuietConsoleRunner'``).
- :class:`TrainProgressHook` shows a training's iterations as a progress bar
  with ETA and the current loss (one line per ~5 % in a log file).
- :func:`announce` logs a line and shows it on the console, quiet or not:
  the EM loop's stage lines and per-step rows, and the run's closing
  summary (``EMReportHook``), whose time :func:`format_duration` writes.
"""
import logging
import sys
import warnings
from typing import Optional

import torch
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.logging import MMLogger
from mmengine.runner import Runner
from tqdm import tqdm

from ..progress import progress
from ..registry import HOOKS, RUNNERS

QUIET_LEVEL = logging.WARNING
# Deprecation notices the libraries repeat for every runner or model and a
# user cannot act on: kept in the log files, off the quiet console.
LIBRARY_NOTICES = ('"FileClient" will be deprecated',
                   '"HardDiskBackend" is the alias')
LIBRARY_WARNINGS = r'``build_loss`` would be deprecated'


class DropLibraryNotices(logging.Filter):
    """Drops the log records of :data:`LIBRARY_NOTICES`."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(LIBRARY_NOTICES)


def console_handlers(logger: logging.Logger) -> list:
    """The handlers of ``logger`` that write to a terminal stream, not a
    file (``FileHandler`` is a ``StreamHandler`` too)."""
    return [handler for handler in logger.handlers
            if isinstance(handler, logging.StreamHandler)
            and not isinstance(handler, logging.FileHandler)]


def quiet_console(logger: logging.Logger) -> None:
    """Show only warnings and errors of ``logger`` on the console, without
    the libraries' repeated deprecation notices."""
    for handler in console_handlers(logger):
        handler.setLevel(max(handler.level, QUIET_LEVEL))
        handler.addFilter(DropLibraryNotices())
    warnings.filterwarnings('ignore', message=LIBRARY_WARNINGS)


def announce(logger: logging.Logger, message: str) -> None:
    """Log ``message`` (INFO) and show it on rank 0's console even where
    ``logger``'s console handler is quiet."""
    logger.info(message)
    shown = any(handler.level <= logging.INFO
                for handler in console_handlers(logger))
    if not shown and is_main_process():
        # tqdm.write keeps an open progress bar intact.
        tqdm.write(message, file=sys.stdout)


def format_duration(seconds: float) -> str:
    """A run's duration for people: '42 s', '12 min 05 s', '2 h 03 min'."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f'{hours} h {minutes:02d} min'
    if minutes:
        return f'{minutes} min {secs:02d} s'
    return f'{secs} s'


@RUNNERS.register_module()
class QuietConsoleRunner(Runner):
    """An mmengine ``Runner`` whose console shows only warnings and errors.

    Its log file keeps everything (config, hook table, iteration lines).
    """

    def build_logger(self, log_level='INFO', log_file: Optional[str] = None,
                     **kwargs) -> MMLogger:
        logger = super().build_logger(log_level, log_file, **kwargs)
        quiet_console(logger)
        return logger


@HOOKS.register_module()
class TrainProgressHook(Hook):
    """A progress bar over a training's iterations (rank 0 only).

    It starts at the iteration a resumed run continues from and shows the
    last iteration's total loss.

    Args:
        desc (str): The bar's prefix, e.g. the stage name.
    """

    priority = 'BELOW_NORMAL'

    def __init__(self, desc: str = 'train') -> None:
        self.desc = desc
        self._bar = None

    def before_train(self, runner) -> None:
        self._bar = progress(total=runner.max_iters, initial=runner.iter,
                             desc=self.desc, unit='it',
                             disable=not is_main_process())

    def after_train_iter(self, runner, batch_idx: int,
                         data_batch=None, outputs=None) -> None:
        if outputs and 'loss' in outputs:
            loss = float(torch.as_tensor(outputs['loss']).detach())
            self._bar.set_postfix_str(f'loss {loss:.3f}', refresh=False)
        self._bar.update()

    def after_train(self, runner) -> None:
        self._bar.close()
