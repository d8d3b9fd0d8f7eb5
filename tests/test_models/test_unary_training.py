"""The unary net trained on pseudo labels with unknown (255) regions
generalises into them: its predictions reach the input labels' mIoU."""
import copy
import os
import os.path as osp

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import DefaultScope

from iaffinity_plugins.datasets.synthetic import make_synthetic_dataset
from iaffinity_plugins.engine.checkpoint import load_checkpoint_strict
from iaffinity_plugins.engine.stage_runner import train_stage
from iaffinity_plugins.evaluation.label_metrics import (confusion_matrix,
                                                        evaluate_label_dir,
                                                        label_quality)
from iaffinity_plugins.labels.label_io import read_label, write_label
from iaffinity_plugins.registry import DATASETS, MODELS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(REPO, 'configs', 'iaffinity', 'synthetic_demo.py')


def _hide_regions(gt: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Ground truth with two random rectangles marked unknown (255)."""
    label = gt.copy()
    height, width = label.shape
    for _ in range(2):
        top, left = rng.integers(0, height // 2), rng.integers(0, width // 2)
        label[top:top + height // 2, left:left + width // 2] = 255
    return label


def test_unary_net_fills_unknown_regions(tmp_path):
    data_root = make_synthetic_dataset(
        str(tmp_path / 'data'), num_train=24, num_val=2, min_size=64,
        max_size=64, num_classes=2, max_objects=1, core_radius=3.0, seed=1)
    cfg = Config.fromfile(DEMO).to_dict()
    dataset_cfg = dict(type='VOCLayoutDataset', data_root=data_root,
                       ann_file='ImageSets/Segmentation/train.txt',
                       tags_file='tags.txt',
                       pipeline=cfg['infer_pipeline'])
    with DefaultScope.overwrite_default_scope('mmseg'):
        dataset = DATASETS.build(dataset_cfg)
    labels_dir = str(tmp_path / 'pseudo')
    os.makedirs(labels_dir)
    rng = np.random.default_rng(0)
    for index in range(len(dataset)):
        info = dataset.get_data_info(index)
        write_label(osp.join(labels_dir, info['img_id'] + '.png'),
                    _hide_regions(read_label(info['gt_seg_map_path']), rng))
    input_quality = evaluate_label_dir(labels_dir, dataset)

    unary = copy.deepcopy(cfg['train_cfg']['unary'])
    unary['model']['decode_head']['num_classes'] = 3
    unary['model']['data_preprocessor']['size'] = (48, 48)
    unary.update(batch_size=4, num_workers=0,
                 train_cfg=dict(type='IterBasedTrainLoop', max_iters=400))
    unary['param_scheduler'][0]['end'] = 400
    for transform in unary['pipeline']:
        if transform['type'] == 'RandomCrop':
            transform['crop_size'] = (48, 48)
        if transform['type'] == 'RandomResize':
            transform['scale'] = (256, 64)
    runtime = dict(cfg, train_dataloader=dict(dataset=dataset_cfg))
    runtime['default_hooks']['checkpoint']['interval'] = 1000
    weights = train_stage(unary, runtime, str(tmp_path / 'unary'), 'unary',
                          labels_dir)

    model = MODELS.build(unary['model'])
    load_checkpoint_strict(model, weights)
    model.eval()
    confusion = 0
    with torch.no_grad():
        for index in range(len(dataset)):
            batch = model.data_preprocessor(
                pseudo_collate([dataset.prepare_data(index)]), False)
            logits = model.encode_decode(batch['inputs'],
                                         [s.metainfo for s in
                                          batch['data_samples']])
            prediction = logits[0].argmax(0).numpy().astype(np.uint8)
            gt = read_label(dataset.get_data_info(index)['gt_seg_map_path'])
            confusion = confusion + confusion_matrix(prediction, gt, 3)
    predicted = label_quality(confusion)
    # The labels leave about a third of the pixels unknown; a net that only
    # copied them could not exceed their mIoU, one that generalises does.
    # Measured (docs/benchmarks.md, "Training-outcome tests"): 200
    # iterations gave -0.5 to +10.9 over 11 runs (seeds x threads x
    # kernels), 400 give +16.1 to +22.5 on the weakest of those seeds.
    assert input_quality['labelled_fraction'] < 80
    assert predicted['miou'] >= input_quality['miou'] + 5, (predicted,
                                                            input_quality)
