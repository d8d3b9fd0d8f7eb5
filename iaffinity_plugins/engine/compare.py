"""Several runs side by side (ablations, the paper's Tables 3, 6, 8).

Reads each run's ``report.json`` (:func:`~.report.read_report`) and writes
one markdown table and one plot. Table rows are runs x steps: a ``seeds``
row (Y_0 is the first label set, so it fills the "mined" columns), one row
per EM step (step 0 trains on the seeds) and a ``final`` row with the final
val mIoU and, given a fully supervised reference run (``ValReportHook``),
the weak/full ratio in percent. Used by ``tools/compare_runs.py``.
"""
import os
import os.path as osp
from typing import List, Optional, Sequence, Tuple

from ..labels.label_io import atomic_write_bytes
from .report import STEP_COLUMNS, markdown_table, read_report, save_figure

COMPARE_HEADER = ('run', 'step', 'unary mIoU', 'refined mIoU', 'mined mIoU',
                  'mined precision', 'labelled %', 'J refined', 'J mined',
                  'final val mIoU', 'weak/full %')
# decimals per column: energies are ~0.01-0.1 (the paper's Table 7)
COMPARE_DIGITS = (2, ) * 7 + (3, 3) + (2, 2)
MARKDOWN_FILE = 'comparison.md'
PLOT_FILE = 'comparison_miou.png'

Run = Tuple[str, dict]


def run_names(work_dirs: Sequence[str],
              names: Optional[Sequence[str]] = None) -> List[str]:
    """``names``, or the work dirs' folder names, one per run."""
    if names is None:
        # a work dir, or the report.json inside one
        return [osp.basename(osp.dirname(path) if osp.isfile(path) else
                             osp.normpath(path)) for path in work_dirs]
    if len(names) != len(work_dirs):
        raise ValueError(f'--names gives {len(names)} names for '
                         f'{len(work_dirs)} work dirs: {list(names)}')
    return list(names)


def _ratio(final: Optional[float],
           full_miou: Optional[float]) -> Optional[float]:
    if final is None or not full_miou:
        return None
    return 100.0 * final / full_miou


def comparison_rows(runs: Sequence[Run],
                    full_reference: Optional[Run] = None) -> List[list]:
    """Rows of :data:`COMPARE_HEADER` (None = no value)."""
    full_miou = (None if full_reference is None else
                 full_reference[1]['final']['miou'])
    blanks = [None] * (len(STEP_COLUMNS) - 1)
    rows = []
    for name, report in runs:
        seeds = report['seeds']
        if any(value is not None for value in seeds.values()):
            rows.append([name, 'seeds', None, None, seeds['miou'],
                         seeds['precision'], seeds['labelled_fraction'],
                         None, None, None, None])
        rows += [[name] + [step[key] for key in STEP_COLUMNS] + [None, None]
                 for step in report['steps']]
        final = report['final']['miou']
        rows.append([name, 'final'] + blanks +
                    [final, _ratio(final, full_miou)])
    if full_reference is not None:
        rows.append([f'{full_reference[0]} (reference)', 'final'] + blanks +
                    [full_miou, _ratio(full_miou, full_miou)])
    return rows


def comparison_markdown(runs: Sequence[Run],
                        full_reference: Optional[Run] = None) -> str:
    """The markdown table of :func:`comparison_rows` with a title."""
    lines = ['# Run comparison', '',
             'mIoU, precision and labelled fraction in percent on the '
             'training images; J = <a, a - G a> per labelled pixel; final '
             'val mIoU of the final unary net.', '',
             markdown_table(COMPARE_HEADER,
                            comparison_rows(runs, full_reference),
                            COMPARE_DIGITS), '']
    return '\n'.join(lines)


def plot_comparison(runs: Sequence[Run], path: str,
                    full_reference: Optional[Run] = None) -> None:
    """mIoU per EM step of every run (PNG): refined solid, unary dashed."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for index, (name, report) in enumerate(runs):
        steps = [step['step'] for step in report['steps']]
        for key, style, label in (('refined_miou', '-', name),
                                  ('unary_miou', '--', f'{name} (unary)')):
            values = [step[key] for step in report['steps']]
            if steps and all(value is not None for value in values):
                axis.plot(steps, values, style, marker='o',
                          color=f'C{index}', label=label)
    if full_reference is not None and \
            full_reference[1]['final']['miou'] is not None:
        axis.axhline(full_reference[1]['final']['miou'], color='black',
                     linestyle=':',
                     label=f'{full_reference[0]} (reference, val)')
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.set_xlabel('EM step')
    axis.set_ylabel('mIoU on training images (%)')
    if axis.get_legend_handles_labels()[0]:
        axis.legend(fontsize=7)
    axis.grid(alpha=0.3)
    save_figure(figure, path)


def compare_runs(work_dirs: Sequence[str], out_dir: str,
                 names: Optional[Sequence[str]] = None,
                 full_reference: Optional[str] = None) -> str:
    """Write :data:`MARKDOWN_FILE` and :data:`PLOT_FILE` in ``out_dir``.

    Args:
        work_dirs: Run work dirs (or their ``report.json`` files).
        out_dir: Output folder (created).
        names: Row labels, one per run; default: the folder names.
        full_reference: Work dir of a fully supervised run (its report's
            final val mIoU is the denominator of the weak/full ratio).

    Returns:
        str: The markdown.
    """
    if not work_dirs:
        raise ValueError('compare_runs needs at least one work dir')
    runs = list(zip(run_names(work_dirs, names),
                    (read_report(path) for path in work_dirs)))
    reference = None if full_reference is None else (
        run_names([full_reference])[0], read_report(full_reference))
    markdown = comparison_markdown(runs, reference)
    os.makedirs(out_dir, exist_ok=True)
    atomic_write_bytes(osp.join(out_dir, MARKDOWN_FILE), markdown.encode())
    plot_comparison(runs, osp.join(out_dir, PLOT_FILE), reference)
    return markdown
