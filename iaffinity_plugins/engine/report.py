"""The per-step report of an EM run (the paper's Tables 5 and 7, Fig. 6).

``report.json`` schema (stable; mIoU etc. in percent on the training images
with ground truth, ``null`` where a stage is switched off or no ground truth
exists)::

    {"seeds": {"miou", "precision", "labelled_fraction"},
     "steps": [{"step", "unary_miou", "refined_miou", "mined_miou",
                "mined_precision", "mined_labelled_fraction",
                "energy_refined", "energy_mined"}],
     "final": {"miou"}}

Every step t = 0 .. T mines Y_t from the output of its unary net f_t (f_0
trains on the seeds); ``mined_*`` and ``energy_mined`` are null only in
reports of runs without mining. A run without EM steps (the fully
supervised reference, ``ValReportHook``) has ``"steps": []``, null seeds and
only the final val mIoU.

An ``"errors"`` list may follow: one row per label map (``"labels"``:
``"seeds"``, ``"step 1 unary"``, ...) with the percentages of
:func:`~iaffinity_plugins.evaluation.label_metrics.error_breakdown`
(:data:`ERROR_COLUMNS`), for the maps whose quality was measured with it.
:func:`read_report` reads and checks a report; ``engine/compare.py`` puts
several side by side.
"""
import csv
import io
import json
import math
import os.path as osp
from typing import List, Optional, Sequence

from ..labels.label_io import atomic_write_bytes, read_label, voc_palette

STEP_COLUMNS = ('step', 'unary_miou', 'refined_miou', 'mined_miou',
                'mined_precision', 'mined_labelled_fraction',
                'energy_refined', 'energy_mined')
ERROR_COLUMNS = ('bg_as_fg', 'bg_unknown', 'fg_as_bg', 'fg_wrong_class',
                 'fg_unknown', 'fg_right')


def _metric(quality: Optional[dict], key: str) -> Optional[float]:
    return None if quality is None else _finite(quality[key])


def build_report(records: Sequence[dict],
                 final: Optional[dict] = None,
                 seeds: Optional[dict] = None) -> dict:
    """The report dict from the EM loop's step records and val metrics.

    Args:
        records: One record per step (0 .. T), as written by the loop's
            evaluate stage: ``step``, ``quality`` (label quality per label
            map name: seeds, unary, refined, mined; None where not measured,
            e.g. mined at step 0) and the two energies.
        final: The val loop's metrics (``mIoU``) of the final unary net.
        seeds: Label quality of the seeds, used before a step finished.
    """
    if records:
        seeds = records[0]['quality']['seeds']
    steps = []
    for record in records:
        quality = record['quality']
        steps.append(dict(
            step=record['step'],
            unary_miou=_metric(quality['unary'], 'miou'),
            refined_miou=_metric(quality['refined'], 'miou'),
            mined_miou=_metric(quality['mined'], 'miou'),
            mined_precision=_metric(quality['mined'], 'precision'),
            mined_labelled_fraction=_metric(quality['mined'],
                                            'labelled_fraction'),
            energy_refined=_finite(record['energy_refined']),
            energy_mined=_finite(record['energy_mined'])))
    return dict(
        seeds={key: _metric(seeds, key)
               for key in ('miou', 'precision', 'labelled_fraction')},
        steps=steps,
        final=dict(miou=None if not final else float(final['mIoU'])),
        errors=_error_rows(seeds, records))


def _finite(value: Optional[float]) -> Optional[float]:
    """None for NaN (e.g. no object pixel at all): JSON has no NaN."""
    return None if value is None or math.isnan(value) else value


def _error_rows(seeds: Optional[dict], records: Sequence[dict]) -> list:
    """One :data:`ERROR_COLUMNS` row per label map measured with them."""
    maps = [('seeds', seeds)] + [
        (f"step {record['step']} {name}", record['quality'][name])
        for record in records for name in ('unary', 'refined', 'mined')]
    # Qualities without 'errors' come from manifests written before the
    # breakdown existed, or from switched-off stages (None).
    return [dict(labels=name, **{key: _finite(quality['errors'][key])
                                 for key in ERROR_COLUMNS})
            for name, quality in maps
            if quality is not None and 'errors' in quality]


def read_report(path: str) -> dict:
    """Read and check a ``report.json`` (or the one in a work dir).

    Args:
        path (str): A ``report.json`` or a run's work dir holding one.

    Returns:
        dict: The report, with every key of the schema above.

    Raises:
        FileNotFoundError / ValueError: naming the file and what is wrong.
    """
    if osp.isdir(path):
        path = osp.join(path, 'report.json')
    if not osp.isfile(path):
        raise FileNotFoundError(f'no run report {path} (written by '
                                'EMReportHook / ValReportHook)')
    with open(path) as file:
        report = json.load(file)
    missing = [key for key in ('seeds', 'steps', 'final')
               if key not in report]
    if not missing and 'miou' not in (report['final'] or {}):
        missing = ['final.miou']
    for index, step in enumerate(report.get('steps') or []):
        missing += [f'steps[{index}].{key}' for key in STEP_COLUMNS
                    if key not in step]
    if missing:
        raise ValueError(f'{path} is not a run report: missing {missing}')
    return report


def format_value(value, digits: int = 2) -> str:
    """A report value for markdown: '-' for None, floats with ``digits``."""
    if value is None:
        return '-'
    return f'{value:.{digits}f}' if isinstance(value, float) else str(value)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence],
                   digits: Optional[Sequence[int]] = None) -> str:
    """A markdown table; cells go through :func:`format_value`.

    Args:
        header: Column names.
        rows: One sequence of values per row.
        digits: Decimals per column (default: 2 everywhere).
    """
    digits = digits or [2] * len(header)
    lines = ['| ' + ' | '.join(header) + ' |',
             '|' + ' --- |' * len(header)]
    lines += ['| ' + ' | '.join(format_value(value, places)
                                for value, places in zip(row, digits)) + ' |'
              for row in rows]
    return '\n'.join(lines)


def report_markdown(report: dict) -> str:
    """Table-5-style markdown of :func:`build_report`'s dict."""
    seeds = report['seeds']
    lines = [
        '# EM run report', '',
        f"Seeds: mIoU {format_value(seeds['miou'])}, precision "
        f"{format_value(seeds['precision'])}, labelled "
        f"{format_value(seeds['labelled_fraction'])} %", '',
        'Step t: the unary net f_t trained on the previous step\'s '
        'refined or mined labels (train_cfg.unary_labels; f_0 on the '
        'seeds), Y_t mined from its output, the pairwise net g_t trained '
        'on Y_t.', '',
        markdown_table(STEP_COLUMNS, [[step[key] for key in STEP_COLUMNS]
                                      for step in report['steps']]), '',
        f"Final unary net, val mIoU: "
        f"{format_value(report['final']['miou'])}", ''
    ]
    errors = report.get('errors')
    if errors:
        lines += [
            'Where the pixels go: percent of the ground-truth background '
            '(bg_*) or object (fg_*) pixels.', '',
            markdown_table(('labels', ) + ERROR_COLUMNS,
                           [[row[key] for key in ('labels', ) + ERROR_COLUMNS]
                            for row in errors],
                           digits=[0] + [1] * len(ERROR_COLUMNS)), ''
        ]
    return '\n'.join(lines)


def write_report(report: dict, out_dir: str) -> None:
    """Write ``report.json``, ``report.csv`` and ``report.md`` atomically."""
    atomic_write_bytes(osp.join(out_dir, 'report.json'),
                       json.dumps(report, indent=2).encode())
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=STEP_COLUMNS)
    writer.writeheader()
    writer.writerows(report['steps'])
    atomic_write_bytes(osp.join(out_dir, 'report.csv'),
                       table.getvalue().encode())
    atomic_write_bytes(osp.join(out_dir, 'report.md'),
                       report_markdown(report).encode())


def step_summary(step: dict, seeds: dict) -> str:
    """One step's Table-5 row as a line of text (for the console).

    Args:
        step (dict): A ``report['steps']`` entry.
        seeds (dict): ``report['seeds']``.
    """
    def value(number) -> str:
        return format_value(_finite(number), 1)

    mined = (f" | mined {value(step['mined_miou'])} (precision "
             f"{value(step['mined_precision'])}, labelled "
             f"{value(step['mined_labelled_fraction'])} %)")
    energy_mined = f", mined {format_value(step['energy_mined'], 3)}"
    return (f"step {step['step']}: mIoU seeds {value(seeds['miou'])} | "
            f"unary {value(step['unary_miou'])} | refined "
            f"{value(step['refined_miou'])}{mined} | energy refined "
            f"{format_value(step['energy_refined'], 3)}{energy_mined}")


def save_figure(figure, path: str) -> None:
    """Write a matplotlib figure as PNG atomically and close it."""
    import matplotlib.pyplot as plt
    buffer = io.BytesIO()
    figure.savefig(buffer, format='png', dpi=100, bbox_inches='tight')
    plt.close(figure)
    atomic_write_bytes(path, buffer.getvalue())


def plot_miou(report: dict, path: str) -> None:
    """:func:`miou_figure` as a PNG file."""
    save_figure(miou_figure(report), path)


def miou_figure(report: dict):
    """mIoU per step of the unary, refined and mined labels.

    The seeds are a star at step 0; the x axis counts whole steps.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator
    figure, axis = plt.subplots(figsize=(6, 4))
    seeds = report['seeds']
    steps = [step['step'] for step in report['steps']]
    for key, label in (('unary_miou', 'unary'), ('refined_miou', 'refined'),
                       ('mined_miou', 'mined'),
                       ('mined_precision', 'mined precision')):
        values = [step[key] for step in report['steps']]
        if steps and all(value is not None for value in values):
            axis.plot(steps, values, marker='o', label=label)
    if seeds['miou'] is not None:
        axis.plot([0], [seeds['miou']], marker='*', markersize=12,
                  color='black', linestyle='none', label='seeds')
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.set_xlim(-0.3, max(steps, default=0) + 0.3)
    axis.set_xlabel('EM step (0: trained on the seeds)')
    axis.set_ylabel('on training images (%)')
    axis.legend()
    axis.grid(alpha=0.3)
    return figure


# The stacked parts of each bar of plot_errors: (column, legend label).
OBJECT_FATES = (('fg_right', 'right class'), ('fg_as_bg', 'lost to background'),
                ('fg_wrong_class', 'wrong class'), ('fg_unknown', 'unknown'))
BACKGROUND_FATES = (('bg_as_fg', 'spread into objects'),
                    ('bg_unknown', 'unknown'))


def plot_errors(report: dict, path: str) -> None:
    """:func:`errors_figure` as a PNG file (none without an error
    breakdown)."""
    if report.get('errors'):
        save_figure(errors_figure(report), path)


def errors_figure(report: dict):
    """Where each label map's pixels go, as stacked bars.

    One bar per label map of ``report['errors']`` (seeds, then unary,
    mined and refined per step) in each of two panels: the
    ground-truth object pixels (right class, lost to the background, another
    class, unknown: 100 % in all) and the background pixels (spread into
    objects, unknown; the rest is right).
    """
    rows = report['errors']
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import numpy as np
    names = [row['labels'] for row in rows]
    positions = np.arange(len(rows))
    figure, axes = plt.subplots(1, 2, figsize=(2 + 0.9 * len(rows), 4),
                                sharey=True)
    for axis, fates, title in ((axes[0], OBJECT_FATES, 'object pixels'),
                               (axes[1], BACKGROUND_FATES,
                                'background pixels')):
        bottom = np.zeros(len(rows))
        for key, label in fates:
            heights = np.array([row[key] or 0.0 for row in rows])
            axis.bar(positions, heights, bottom=bottom, label=label)
            bottom += heights
        axis.set_xticks(positions, names, rotation=60, ha='right',
                        fontsize=7)
        axis.set_title(title)
        axis.legend(fontsize=7)
    axes[0].set_ylabel('% of the ground-truth pixels')
    return figure


def plot_label_grid(image_paths: List[str], columns: List[tuple],
                    path: str) -> None:
    """A grid like the paper's Fig. 6: one row per image.

    Args:
        image_paths: RGB images, one per row.
        columns: ``(title, [label PNG path or None per row])`` per column;
            a missing file is drawn empty.
        path: Output PNG.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from PIL import Image
    palette = voc_palette(256)
    rows, cols = len(image_paths), len(columns) + 1
    figure, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.6 * rows),
                                squeeze=False)
    for row, image_path in enumerate(image_paths):
        axes[row, 0].imshow(Image.open(image_path).convert('RGB'))
        for col, (title, label_paths) in enumerate(columns, start=1):
            label_path = label_paths[row]
            if label_path is not None and osp.exists(label_path):
                axes[row, col].imshow(palette[read_label(label_path)])
            if row == 0:
                axes[row, col].set_title(title, fontsize=7)
    axes[0, 0].set_title('image', fontsize=7)
    for axis in axes.flat:
        axis.axis('off')
    save_figure(figure, path)

