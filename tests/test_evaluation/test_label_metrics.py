"""Pseudo-label metrics on hand-made maps with hand-computed numbers."""
import numpy as np
import pytest

from iaffinity_plugins.evaluation.label_metrics import (confusion_matrix,
                                                        evaluate_label_dir,
                                                        format_markdown,
                                                        label_quality,
                                                        to_json_safe)
from iaffinity_plugins.labels.label_io import write_label

# Ground truth, 3 classes, one ignored pixel (255).
GT = np.array([[0, 0, 0, 1],
               [0, 1, 1, 1],
               [2, 2, 255, 1]], dtype=np.uint8)
PRED = np.array([[0, 0, 255, 1],
                 [1, 1, 255, 1],
                 [2, 255, 0, 0]], dtype=np.uint8)


def test_confusion_matrix_counts_unknown_column_and_skips_ignored_gt():
    conf = confusion_matrix(PRED, GT, 3)
    expected = np.array([[2, 1, 0, 1],    # gt 0: 2 right, 1 as 1, 1 unknown
                         [1, 3, 0, 1],    # gt 1: 1 as 0, 3 right, 1 unknown
                         [0, 0, 1, 1]])   # gt 2: 1 right, 1 unknown
    np.testing.assert_array_equal(conf, expected)
    assert conf.sum() == (GT != 255).sum()


def test_label_quality_hand_computed():
    q = label_quality(confusion_matrix(PRED, GT, 3))
    # IoU over all valid pixels: tp / (gt row incl. unknown + pred col - tp).
    iou = [2 / (4 + 3 - 2), 3 / (5 + 4 - 3), 1 / (2 + 1 - 1)]
    # Precision: only labelled pixels (unknown column dropped).
    prec = [2 / (3 + 3 - 2), 3 / (4 + 4 - 3), 1 / (1 + 1 - 1)]
    np.testing.assert_allclose(q['per_class_iou'], np.multiply(iou, 100))
    np.testing.assert_allclose(q['per_class_precision'],
                               np.multiply(prec, 100))
    assert q['miou'] == pytest.approx(100 * np.mean(iou))
    assert q['precision'] == pytest.approx(100 * np.mean(prec))
    assert q['labelled_fraction'] == pytest.approx(100 * 8 / 11)
    assert q['pixel_accuracy'] == pytest.approx(100 * 6 / 11)


def test_error_costs_hand_computed():
    """Precision gained with each kind of error given its ground-truth
    class, on the labelled pixels of PRED (rows gt, columns prediction):
    [[2, 1, 0], [1, 3, 0], [0, 0, 1]], precision (1/2 + 3/5 + 1) / 3."""
    costs = label_quality(confusion_matrix(PRED, GT, 3))['error_costs']
    base = (1 / 2 + 3 / 5 + 1) / 3
    # bg_as_fg: [[3, 0, 0], [1, 3, 0], [0, 0, 1]]
    spill = (3 / 4 + 3 / 4 + 1) / 3
    # fg_as_bg: [[2, 1, 0], [0, 4, 0], [0, 0, 1]]
    shrink = (2 / 3 + 4 / 5 + 1) / 3
    assert costs == pytest.approx(dict(bg_as_fg=100 * (spill - base),
                                       fg_as_bg=100 * (shrink - base),
                                       fg_wrong_class=0.0))
    swapped = np.where(GT == 1, 2, np.where(GT == 2, 1, GT)).astype(np.uint8)
    costs = label_quality(confusion_matrix(swapped, GT, 3))['error_costs']
    # Every object pixel in the other class: the two object IoUs 0 -> 1.
    assert costs['fg_wrong_class'] == pytest.approx(100 * 2 / 3)
    assert costs['bg_as_fg'] == costs['fg_as_bg'] == 0


def test_error_breakdown_hand_computed():
    # GT background: 4 pixels (2 right, 1 as class 1, 1 unknown); GT
    # foreground: 7 pixels (1 as background, 4 right, 0 as the other
    # foreground class, 2 unknown).
    errors = label_quality(confusion_matrix(PRED, GT, 3))['errors']
    assert errors == pytest.approx(dict(
        bg_as_fg=100 * 1 / 4, bg_unknown=100 * 1 / 4, fg_as_bg=100 * 1 / 7,
        fg_wrong_class=0.0, fg_unknown=100 * 2 / 7, fg_right=100 * 4 / 7))
    swapped = np.where(GT == 1, 2, np.where(GT == 2, 1, GT)).astype(np.uint8)
    errors = label_quality(confusion_matrix(swapped, GT, 3))['errors']
    assert errors['fg_wrong_class'] == 100 and errors['fg_right'] == 0
    assert errors['bg_as_fg'] == 0
    no_fg = label_quality(confusion_matrix(np.zeros((2, 2), np.uint8),
                                           np.zeros((2, 2), np.uint8), 3))
    assert np.isnan(no_fg['errors']['fg_right'])
    assert to_json_safe(no_fg)['errors']['fg_right'] is None
    markdown = format_markdown(label_quality(confusion_matrix(PRED, GT, 3)))
    assert '| bg_as_fg | bg_unknown |' in markdown
    assert '| bg_as_fg | fg_as_bg | fg_wrong_class |' in markdown


def test_absent_class_is_left_out_of_the_mean():
    gt = np.zeros((2, 2), np.uint8)
    q = label_quality(confusion_matrix(gt, gt, 4))
    assert q['miou'] == 100 and q['precision'] == 100
    assert np.isnan(q['per_class_iou'][3])
    assert '| 3 | - | - |' in format_markdown(q)


def test_perfect_and_empty_labels():
    q = label_quality(confusion_matrix(np.full_like(GT, 255), GT, 3))
    assert q['miou'] == 0 and q['labelled_fraction'] == 0
    assert np.isnan(q['precision'])


class FolderDataset:
    """The two methods evaluate_label_dir uses, over a list of infos."""

    def __init__(self, infos, classes=('background', 'a', 'b')):
        self.infos, self.metainfo = infos, dict(classes=classes)

    def full_init(self):
        pass

    def __len__(self):
        return len(self.infos)

    def get_data_info(self, index):
        return self.infos[index]


def make_folder(tmp_path, pred_values=PRED):
    gt_dir, label_dir = tmp_path / 'gt', tmp_path / 'labels'
    infos = []
    for img_id in ('x', 'y'):
        write_label(str(gt_dir / f'{img_id}.png'), GT)
        write_label(str(label_dir / f'{img_id}.png'), pred_values)
        infos.append(dict(img_id=img_id,
                          gt_seg_map_path=str(gt_dir / f'{img_id}.png')))
    infos.append(dict(img_id='no_gt', gt_seg_map_path=None))
    write_label(str(label_dir / 'no_gt.png'), GT)
    return str(label_dir), FolderDataset(infos)


def test_evaluate_label_dir_sums_images(tmp_path):
    label_dir, dataset = make_folder(tmp_path)
    result = evaluate_label_dir(label_dir, dataset)
    single = label_quality(confusion_matrix(PRED, GT, 3))
    assert result['miou'] == pytest.approx(single['miou'])
    assert result['images'] == 2 and result['skipped_no_gt'] == 1
    write_label(f'{label_dir}/stray.png', GT)
    with pytest.warns(UserWarning, match='1 label files for images not'):
        assert evaluate_label_dir(label_dir, dataset)['extra_files'] == 1


def test_evaluate_label_dir_bad_input_names_files(tmp_path):
    label_dir, dataset = make_folder(tmp_path)
    bad = PRED.copy()
    bad[0, 0] = 7
    write_label(f'{label_dir}/y.png', bad)
    with pytest.raises(ValueError, match=r'y\.png has values \[7\]'):
        evaluate_label_dir(label_dir, dataset)
    (tmp_path / 'labels' / 'x.png').unlink()
    with pytest.raises(FileNotFoundError, match=r"1 of 3 .*\['x'\]"):
        evaluate_label_dir(label_dir, dataset)
