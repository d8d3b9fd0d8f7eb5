"""Progress bars that stay legible in a log file.

In a terminal, :func:`progress` is a tqdm bar (rate, ETA). When the stream
is not a terminal (a log file, CI) tqdm would write an update every few
items, joined by carriage returns; there :class:`LineProgress` writes the
same tqdm text as whole lines, one about every 5 % and one at the end.
"""
import sys
import time
from typing import IO, Iterable, Iterator, Optional

from tqdm import tqdm

# A line every this fraction of the total when the stream is no terminal.
LINE_FRACTION = 0.05


class LineProgress:
    """tqdm's status text as one line per ~5 % of ``total``.

    Supports the part of tqdm's interface the project uses: iteration,
    ``update``, ``set_postfix_str`` and ``close``.

    Args:
        iterable (Iterable, optional): Items to wrap.
        total (int, optional): Number of steps (``len(iterable)`` if None).
        desc (str): Prefix of every line.
        initial (int): Steps already done (a resumed training).
        unit (str): Unit of the rate.
        file (IO, optional): Where lines go (default ``sys.stderr``).
    """

    def __init__(self, iterable: Optional[Iterable] = None,
                 total: Optional[int] = None, desc: str = '',
                 initial: int = 0, unit: str = 'it',
                 file: Optional[IO] = None) -> None:
        self.iterable = iterable
        self.total = len(iterable) if total is None else total
        self.desc, self.unit, self.initial = desc, unit, initial
        self.file = file or sys.stderr
        self.n = initial
        self.postfix = ''
        self.start = time.time()
        self._every = max(1, int(self.total * LINE_FRACTION))
        self._next_line = initial + self._every
        self._closed = False

    def __iter__(self) -> Iterator:
        for item in self.iterable:
            yield item
            self.update()
        self.close()

    def update(self, n: int = 1) -> None:
        """Count ``n`` more steps; print a line at every ~5 %."""
        self.n += n
        if self.n >= self._next_line and self.n < self.total:
            self._next_line = self.n + self._every
            self._print()

    def set_postfix_str(self, postfix: str, refresh: bool = False) -> None:
        """Text appended to the next lines (e.g. the current loss)."""
        self.postfix = postfix

    def close(self) -> None:
        """Print the final line (once)."""
        if not self._closed:
            self._closed = True
            self._print()

    def _print(self) -> None:
        line = tqdm.format_meter(self.n, self.total,
                                 time.time() - self.start, prefix=self.desc,
                                 unit=self.unit, initial=self.initial,
                                 postfix=self.postfix or None)
        self.file.write(line + '\n')
        self.file.flush()


def progress(iterable: Optional[Iterable] = None,
             total: Optional[int] = None, desc: str = '', initial: int = 0,
             unit: str = 'it', disable: bool = False,
             file: Optional[IO] = None):
    """A progress bar: tqdm in a terminal, :class:`LineProgress` elsewhere.

    Args:
        iterable, total, desc, initial, unit: As for tqdm.
        disable (bool): No output at all (e.g. on ranks other than 0).
        file (IO, optional): The stream (default ``sys.stderr``).

    Returns:
        An object with tqdm's ``update``, ``set_postfix_str``, ``close``,
        iterable when ``iterable`` is given.
    """
    file = file or sys.stderr
    if disable or file.isatty():
        return tqdm(iterable, total=total, desc=desc, initial=initial,
                    unit=unit, disable=disable, file=file,
                    dynamic_ncols=True)
    return LineProgress(iterable, total, desc, initial, unit, file)
