"""Progress bars: tqdm in a terminal, bounded whole lines in a log file."""
import io

from iaffinity_plugins.progress import LineProgress, progress


def test_log_file_gets_a_line_about_every_5_percent():
    stream = io.StringIO()
    bar = progress(range(1000), desc='seeds', unit='img', file=stream)
    assert isinstance(bar, LineProgress)
    assert sum(1 for _ in bar) == 1000
    text = stream.getvalue()
    lines = text.splitlines()
    assert '\r' not in text
    assert 19 <= len(lines) <= 21, lines
    assert lines[-1].startswith('seeds: 100%') and '1000/1000' in lines[-1]
    assert '50/1000' in lines[0] and 'img/s' in lines[0]


def test_resumed_training_counts_from_its_iteration_with_postfix():
    stream = io.StringIO()
    bar = progress(total=100, initial=60, desc='step_0/unary', file=stream)
    for _ in range(40):
        bar.set_postfix_str('loss 0.500')
        bar.update()
    bar.close()
    bar.close()  # closing twice prints once
    lines = stream.getvalue().splitlines()
    assert len(lines) == 8
    assert '65/100' in lines[0] and lines[-1].endswith('loss 0.500]')


def test_disabled_bar_writes_nothing():
    stream = io.StringIO()
    for _ in progress(range(10), file=stream, disable=True):
        pass
    assert stream.getvalue() == ''
