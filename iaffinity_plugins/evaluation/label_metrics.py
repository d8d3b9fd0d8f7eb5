"""Quality of pseudo-label maps against ground truth (paper Tables 4 and 5).

Pseudo labels leave pixels unknown (255), so two views matter:

* ``miou``: IoU over every pixel with a valid ground truth; an unknown
  prediction is a miss (a false negative of its ground-truth class).
* ``precision``: the same mIoU computed ONLY over the pixels the label map
  labels (unknown pixels removed from both sides). This is the paper's
  "precision" of seeds / mined regions: how right the labels that exist are.
* ``labelled_fraction``: labelled / ground-truth-valid pixels.
* ``errors``: where the pixels go, as fractions of the ground-truth
  background or foreground pixels (:func:`error_breakdown`): whether a weak
  label map errs by spreading objects into the background, by missing
  them, or by giving them the wrong class calls for different remedies.

All numbers are percentages. Classes absent from both the ground truth and
the prediction (in the pixels a metric looks at) are left out of its mean.
Shapes: H x W label size, K classes including background.
"""
import os
import os.path as osp
import warnings
from typing import Dict, List, Optional, Sequence

import numpy as np

from iaffinity_plugins.labels.label_io import (IGNORE_INDEX,
                                               check_label_values, read_label)
from iaffinity_plugins.progress import progress as progress_bar


def confusion_matrix(pred: np.ndarray, gt: np.ndarray,
                     num_classes: int) -> np.ndarray:
    """Pixel counts of (ground-truth class, predicted class or unknown).

    Args:
        pred (np.ndarray): (H, W) uint8 prediction, 255 = unknown.
        gt (np.ndarray): (H, W) uint8 ground truth, 255 = ignored.
        num_classes (int): K.

    Returns:
        np.ndarray: (K, K + 1) int64; row = ground truth, column = prediction,
        the last column counts unknown predictions. Ground-truth 255 pixels
        are not counted.
    """
    if pred.shape != gt.shape:
        raise ValueError(f'prediction {pred.shape} and ground truth '
                         f'{gt.shape} differ in shape')
    valid = gt != IGNORE_INDEX
    gt_valid = gt[valid].astype(np.int64)
    # Unknown predictions go to column K.
    pred_valid = np.where(pred[valid] == IGNORE_INDEX, num_classes,
                          pred[valid]).astype(np.int64)
    counts = np.bincount(gt_valid * (num_classes + 1) + pred_valid,
                         minlength=num_classes * (num_classes + 1))
    return counts.reshape(num_classes, num_classes + 1)


def _iou(confusion: np.ndarray) -> np.ndarray:
    """Per-class IoU (K,) of a (K, K + 1) or (K, K) confusion.

    Row sums include the unknown column when there is one, so unknown
    predictions count as false negatives of their ground-truth class.
    NaN where a class has no ground truth and no prediction.
    """
    num_classes = confusion.shape[0]
    predicted = confusion[:, :num_classes]
    tp = np.diag(predicted).astype(np.float64)
    union = confusion.sum(1) + predicted.sum(0) - tp
    with np.errstate(invalid='ignore', divide='ignore'):
        return np.where(union > 0, tp / union, np.nan)


def _nanmean(values: np.ndarray) -> float:
    """Mean over present classes; NaN when none is present."""
    return float(np.nanmean(values)) if np.isfinite(values).any() else np.nan


def error_breakdown(confusion: np.ndarray) -> Dict[str, float]:
    """Fates of background (class 0) and foreground pixels, in percent.

    Args:
        confusion (np.ndarray): (K, K + 1) from :func:`confusion_matrix`.

    Returns:
        dict: ``bg_as_fg`` and ``bg_unknown`` (percent of ground-truth
        background pixels), ``fg_as_bg``, ``fg_wrong_class``,
        ``fg_unknown`` and ``fg_right`` (percent of ground-truth foreground
        pixels); NaN when there is no such pixel.
    """
    num_classes = confusion.shape[0]
    background, foreground = confusion[0], confusion[1:]
    fg_labelled = foreground[:, 1:num_classes]
    fg_right = np.trace(fg_labelled)
    counts = dict(
        bg_as_fg=(background[1:num_classes].sum(), background.sum()),
        bg_unknown=(background[num_classes], background.sum()),
        fg_as_bg=(foreground[:, 0].sum(), foreground.sum()),
        fg_wrong_class=(fg_labelled.sum() - fg_right, foreground.sum()),
        fg_unknown=(foreground[:, num_classes].sum(), foreground.sum()),
        fg_right=(fg_right, foreground.sum()))
    return {name: 100 * float(part) / float(total) if total else np.nan
            for name, (part, total) in counts.items()}


def error_costs(confusion: np.ndarray) -> Dict[str, float]:
    """Precision (mIoU of the labelled pixels) points each kind of error
    costs: what the precision would gain with those pixels given their
    ground-truth class.

    Args:
        confusion (np.ndarray): (K, K + 1) from :func:`confusion_matrix`.

    Returns:
        dict: ``bg_as_fg`` (objects spilling into the background),
        ``fg_as_bg`` (objects shrunk) and ``fg_wrong_class`` (objects
        confused with each other), in precision points.
    """
    num_classes = confusion.shape[0]
    labelled = confusion[:, :num_classes].astype(np.float64)
    base = _nanmean(_iou(labelled))
    background_row = np.zeros((num_classes, num_classes), dtype=bool)
    background_row[0, 1:] = True
    background_column = np.zeros_like(background_row)
    background_column[1:, 0] = True
    wrong_class = ~np.eye(num_classes, dtype=bool)
    wrong_class[0] = wrong_class[:, 0] = False
    costs = {}
    for name, errors in (('bg_as_fg', background_row),
                         ('fg_as_bg', background_column),
                         ('fg_wrong_class', wrong_class)):
        corrected = np.where(errors, 0.0, labelled)
        corrected[np.diag_indices(num_classes)] += np.where(
            errors, labelled, 0.0).sum(1)
        costs[name] = 100 * (_nanmean(_iou(corrected)) - base)
    return costs


def label_quality(confusion: np.ndarray) -> Dict[str, object]:
    """mIoU, precision, labelled fraction and pixel accuracy (percent).

    Args:
        confusion (np.ndarray): (K, K + 1) from :func:`confusion_matrix`
            (summed over images).

    Returns:
        dict: ``miou``, ``precision``, ``labelled_fraction``,
        ``pixel_accuracy`` (floats), ``per_class_iou``,
        ``per_class_precision`` (lists of K floats, NaN = class absent),
        ``errors`` (:func:`error_breakdown`) and ``error_costs``
        (:func:`error_costs`).
    """
    num_classes = confusion.shape[0]
    labelled = confusion[:, :num_classes]
    iou = _iou(confusion)
    # Dropping the unknown column restricts the IoU to labelled pixels.
    precision = _iou(labelled)
    total = confusion.sum()
    with np.errstate(invalid='ignore', divide='ignore'):
        labelled_fraction = labelled.sum() / total
        accuracy = np.trace(labelled) / total
    return dict(
        miou=100 * _nanmean(iou),
        precision=100 * _nanmean(precision),
        labelled_fraction=100 * float(labelled_fraction),
        pixel_accuracy=100 * float(accuracy),
        per_class_iou=(100 * iou).tolist(),
        per_class_precision=(100 * precision).tolist(),
        errors=error_breakdown(confusion),
        error_costs=error_costs(confusion))


def _label_files(label_dir: str) -> set:
    """Stems of the PNG files in ``label_dir``."""
    if not osp.isdir(label_dir):
        raise FileNotFoundError(f'label folder not found: {label_dir}')
    return {osp.splitext(name)[0] for name in os.listdir(label_dir)
            if name.endswith('.png')}


def evaluate_label_dir(label_dir: str, dataset,
                       num_classes: Optional[int] = None,
                       progress: bool = False) -> Dict[str, object]:
    """Evaluate the label folder ``label_dir`` against a data set's ground
    truth.

    Args:
        label_dir (str): Folder with one ``<img_id>.png`` per image.
        dataset (BaseSegDataset): Its data list gives ``img_id`` and
            ``gt_seg_map_path`` (no pipeline is run).
        num_classes (int, optional): K; defaults to the data set's classes.
        progress (bool): Show a tqdm progress bar.

    Returns:
        dict: :func:`label_quality`'s numbers plus ``classes``, ``images``
        (evaluated), ``skipped_no_gt`` and ``extra_files`` counts.

    Raises:
        FileNotFoundError: label files missing (first ids and the count).
        ValueError: a label or ground-truth value out of range, or a shape
            mismatch, naming the file.
    """
    dataset.full_init()
    classes = list(dataset.metainfo['classes'])
    num_classes = num_classes or len(classes)
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    present = _label_files(label_dir)
    missing = [info['img_id'] for info in infos
               if info['img_id'] not in present]
    if missing:
        raise FileNotFoundError(
            f'{len(missing)} of {len(infos)} label files missing in '
            f'{label_dir}, e.g. {missing[:5]}')
    extra = len(present - {info['img_id'] for info in infos})
    if extra:
        warnings.warn(f'{label_dir} has {extra} label files for images not '
                      'in the data set; they are ignored')
    confusion = np.zeros((num_classes, num_classes + 1), dtype=np.int64)
    skipped = 0
    for info in progress_bar(infos, desc='evaluating labels', unit='img',
                             disable=not progress):
        if info.get('gt_seg_map_path') is None:
            skipped += 1
            continue
        path = osp.join(label_dir, f"{info['img_id']}.png")
        pred = read_label(path)
        gt = read_label(info['gt_seg_map_path'])
        check_label_values(pred, num_classes, path)
        check_label_values(gt, num_classes, info['gt_seg_map_path'])
        if pred.shape != gt.shape:
            raise ValueError(f'{path} has shape {pred.shape} but its ground '
                             f"truth {info['gt_seg_map_path']} {gt.shape}")
        confusion += confusion_matrix(pred, gt, num_classes)
    return dict(label_quality(confusion), classes=classes,
                images=len(infos) - skipped, skipped_no_gt=skipped,
                extra_files=extra)


SUMMARY_KEYS = ('miou', 'precision', 'labelled_fraction', 'pixel_accuracy')


def _cell(value: float) -> str:
    return '-' if value is None or np.isnan(value) else f'{value:.2f}'


def format_markdown(result: Dict[str, object],
                    class_names: Optional[Sequence[str]] = None) -> str:
    """Per-class IoU/precision, summary and error tables in markdown.

    Args:
        result (dict): From :func:`label_quality` or
            :func:`evaluate_label_dir`.
        class_names (Sequence[str], optional): Defaults to
            ``result['classes']`` or the class indices.
    """
    iou, precision = result['per_class_iou'], result['per_class_precision']
    names = class_names or result.get('classes') or [
        str(i) for i in range(len(iou))]
    lines: List[str] = ['| class | IoU | precision |', '| --- | --- | --- |']
    lines += [f'| {name} | {_cell(a)} | {_cell(b)} |'
              for name, a, b in zip(names, iou, precision)]
    lines += ['', '| ' + ' | '.join(SUMMARY_KEYS) + ' |',
              '|' + ' --- |' * len(SUMMARY_KEYS),
              '| ' + ' | '.join(_cell(result[k]) for k in SUMMARY_KEYS) + ' |']
    for key, title in (('errors', 'percent of the ground-truth background '
                        '(bg_*) or object (fg_*) pixels'),
                       ('error_costs', 'precision points each kind of '
                        'error costs')):
        table = result.get(key)
        if table:
            lines += ['', f'{key}: {title}', '',
                      '| ' + ' | '.join(table) + ' |',
                      '|' + ' --- |' * len(table),
                      '| ' + ' | '.join(_cell(v) for v in table.values())
                      + ' |']
    return '\n'.join(lines)


def to_json_safe(result: Dict[str, object]) -> Dict[str, object]:
    """``result`` with NaN replaced by None (JSON has no NaN)."""
    def clean(value):
        if isinstance(value, float) and np.isnan(value):
            return None
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, dict):
            return {key: clean(v) for key, v in value.items()}
        return value
    return clean(result)
