"""tools/eval_labels.py on a hand-made VOC-layout folder."""
import json

import numpy as np
import pytest
from PIL import Image

from iaffinity_plugins.labels.label_io import write_label
from tool_scripts import load_tool

GT = np.array([[0, 0, 1, 1], [0, 2, 2, 255]], np.uint8)
PRED = np.array([[0, 255, 1, 2], [0, 2, 2, 1]], np.uint8)


@pytest.fixture
def voc_folder(tmp_path):
    root = tmp_path / 'data'
    (root / 'ImageSets' / 'Segmentation').mkdir(parents=True)
    (root / 'JPEGImages').mkdir()
    (root / 'classes.txt').write_text('background\ncat\ndog\n')
    (root / 'ImageSets' / 'Segmentation' / 'train.txt').write_text('a\n')
    Image.fromarray(np.zeros((2, 4, 3), np.uint8)).save(
        root / 'JPEGImages' / 'a.jpg')
    write_label(str(root / 'SegmentationClass' / 'a.png'), GT)
    write_label(str(tmp_path / 'labels' / 'a.png'), PRED)
    config = tmp_path / 'data_cfg.py'
    config.write_text(
        f"train_dataloader = dict(dataset=dict(type='VOCLayoutDataset', "
        f"data_root={str(root)!r}, pipeline=[]))\n")
    return tmp_path, str(config)


def test_eval_labels_tool_writes_known_numbers(voc_folder, capsys):
    tmp_path, config = voc_folder
    out_json, out_md = tmp_path / 'r.json', tmp_path / 'r.md'
    load_tool('eval_labels.py').main([
        str(tmp_path / 'labels'), '--dataset-config', config,
        '--out-json', str(out_json), '--out-md', str(out_md)])
    result = json.loads(out_json.read_text())
    # background: tp 2, gt row 3 (one unknown), predicted 2 -> 2/3
    # cat: tp 1, gt 2, predicted 1 (the other '1' is on ignored GT) -> 1/2
    # dog: tp 2, gt 2, predicted 3 -> 2/3
    assert result['per_class_iou'] == pytest.approx([200 / 3, 50, 200 / 3])
    assert result['miou'] == pytest.approx(100 * 11 / 18)
    # Labelled pixels only: background 2/2, cat 1/2, dog 2/3.
    assert result['precision'] == pytest.approx(100 * (1 + 1 / 2 + 2 / 3) / 3)
    assert result['labelled_fraction'] == pytest.approx(600 / 7)
    assert '| cat | 50.00 | 50.00 |' in capsys.readouterr().out
    assert '| dog | 66.67 | 66.67 |' in out_md.read_text()
