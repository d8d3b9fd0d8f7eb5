"""COCO 2014 for weakly-supervised segmentation (paper Sec. 4.1).

81 classes: background + the 80 COCO categories in category-id order (class
index = position of the category id in the sorted ids + 1). Label PNGs are
written once from ``annotations/instances_<split>.json`` by
:func:`convert_coco_split` (``tools/convert_coco.py``)::

    <data_root>/train2014/COCO_train2014_<id>.jpg
    <data_root>/annotations/instances_train2014.json
    <data_root>/SegmentationClass/train2014/COCO_train2014_<id>.png   written
    <data_root>/ImageSets/Segmentation/train2014.txt                  written
    <data_root>/ImageSets/Segmentation/train2014_tags.txt             written
    <data_root>/classes.txt                                           written
"""
import os.path as osp
from typing import Optional, Sequence, Tuple

import numpy as np
from mmengine.utils import ProgressBar
from pycocotools.coco import COCO

from iaffinity_plugins.labels.label_io import (IGNORE_INDEX,
                                               atomic_write_bytes, voc_palette,
                                               write_label)
from iaffinity_plugins.registry import DATASETS
from .voc_layout import TagTable, VOCLayoutDataset, write_tags_file

COCO_CLASSES = (
    'background', 'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus',
    'train', 'truck', 'boat', 'traffic light', 'fire hydrant', 'stop sign',
    'parking meter', 'bench', 'bird', 'cat', 'dog', 'horse', 'sheep', 'cow',
    'elephant', 'bear', 'zebra', 'giraffe', 'backpack', 'umbrella', 'handbag',
    'tie', 'suitcase', 'frisbee', 'skis', 'snowboard', 'sports ball', 'kite',
    'baseball bat', 'baseball glove', 'skateboard', 'surfboard',
    'tennis racket', 'bottle', 'wine glass', 'cup', 'fork', 'knife', 'spoon',
    'bowl', 'banana', 'apple', 'sandwich', 'orange', 'broccoli', 'carrot',
    'hot dog', 'pizza', 'donut', 'cake', 'chair', 'couch', 'potted plant',
    'bed', 'dining table', 'toilet', 'tv', 'laptop', 'mouse', 'remote',
    'keyboard', 'cell phone', 'microwave', 'oven', 'toaster', 'sink',
    'refrigerator', 'book', 'clock', 'vase', 'scissors', 'teddy bear',
    'hair drier', 'toothbrush')


def coco_class_names(coco: COCO) -> Tuple[str, ...]:
    """Background + category names in sorted category-id order."""
    cats = coco.loadCats(sorted(coco.getCatIds()))
    return ('background', ) + tuple(cat['name'] for cat in cats)


def _class_index(coco: COCO) -> dict:
    """Category id -> class index (position in the sorted ids + 1)."""
    return {cat_id: i + 1 for i, cat_id in enumerate(sorted(coco.getCatIds()))}


def _image_id(coco: COCO, coco_img_id: int) -> str:
    """Our image id: the stem of the COCO file name."""
    return osp.splitext(coco.imgs[coco_img_id]['file_name'])[0]


def coco_label_map(coco: COCO, coco_img_id: int) -> np.ndarray:
    """Rasterise one image's instances into a class-index map.

    Crowd regions are painted first as 255 (ignore); instances follow from
    the largest to the smallest, so small objects in front of (or inside)
    large ones stay visible and override crowd regions.

    Returns:
        np.ndarray: (H, W) uint8.
    """
    info = coco.imgs[coco_img_id]
    label = np.zeros((info['height'], info['width']), dtype=np.uint8)
    class_index = _class_index(coco)
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[coco_img_id], iscrowd=None))
    for ann in sorted(anns, key=lambda a: (not a['iscrowd'], -a['area'])):
        value = IGNORE_INDEX if ann['iscrowd'] else class_index[
            ann['category_id']]
        label[coco.annToMask(ann).astype(bool)] = value
    return label


def coco_tags(coco: COCO) -> TagTable:
    """Image-level tags of every image: the categories of all its
    annotations, crowd ones included (the objects are in the image).

    Returns:
        dict: img_id (file stem) -> (K-1,) float32 multi-hot.
    """
    class_index = _class_index(coco)
    tags = {}
    for coco_img_id in sorted(coco.imgs):
        multi_hot = np.zeros(len(class_index), dtype=np.float32)
        for ann in coco.imgToAnns.get(coco_img_id, []):
            multi_hot[class_index[ann['category_id']] - 1] = 1
        tags[_image_id(coco, coco_img_id)] = multi_hot
    return tags


def convert_coco_split(data_root: str,
                       split: str = 'train2014',
                       ann_file: Optional[str] = None,
                       overwrite: bool = False) -> int:
    """Write label PNGs, the split file, a tags file and ``classes.txt``.

    Existing PNGs are kept unless ``overwrite``, so an interrupted
    conversion resumes; every file is written atomically.

    Args:
        data_root (str): The COCO folder (see the module docstring).
        split (str): ``train2014`` or ``val2014``.
        ann_file (str, optional): Defaults to
            ``annotations/instances_<split>.json`` under ``data_root``.

    Returns:
        int: Number of PNGs written.
    """
    ann_file = ann_file or osp.join(data_root, 'annotations',
                                    f'instances_{split}.json')
    if not osp.isfile(ann_file):
        raise FileNotFoundError(f'COCO annotation file not found: {ann_file}')
    coco = COCO(ann_file)
    classes = coco_class_names(coco)
    if len(classes) > IGNORE_INDEX:
        raise ValueError(f'{ann_file} has {len(classes) - 1} categories; '
                         f'uint8 label maps hold at most {IGNORE_INDEX - 1}')
    label_dir = osp.join(data_root, 'SegmentationClass', split)
    palette = voc_palette(len(classes))
    written = 0
    progress = ProgressBar(len(coco.imgs))
    for coco_img_id in sorted(coco.imgs):
        path = osp.join(label_dir, _image_id(coco, coco_img_id) + '.png')
        if overwrite or not osp.isfile(path):
            write_label(path, coco_label_map(coco, coco_img_id), palette)
            written += 1
        progress.update()
    tags = coco_tags(coco)
    split_dir = osp.join(data_root, 'ImageSets', 'Segmentation')
    atomic_write_bytes(
        osp.join(split_dir, f'{split}.txt'),
        ''.join(img_id + '\n' for img_id in tags).encode())
    write_tags_file(osp.join(split_dir, f'{split}_tags.txt'), tags, classes)
    atomic_write_bytes(
        osp.join(data_root, 'classes.txt'),
        ''.join(name + '\n' for name in classes).encode())
    return written


@DATASETS.register_module()
class COCO2014WSSSDataset(VOCLayoutDataset):
    """COCO 2014 with image-level tags (label PNGs from
    :func:`convert_coco_split`).

    Args:
        ann_json (str, optional): ``instances_<split>.json`` relative to
            ``data_root``, for the ``'json'`` tag source (slow to parse at
            full scale: the converter's tags file holds the same tags).
        **kwargs: :class:`VOCLayoutDataset` arguments.
    """

    METAINFO = dict(classes=COCO_CLASSES, palette=voc_palette(81).tolist())
    TAG_SOURCES = VOCLayoutDataset.TAG_SOURCES + ('json', )

    def __init__(self,
                 ann_file: str = 'ImageSets/Segmentation/train2014.txt',
                 data_prefix: dict = dict(
                     img_path='train2014',
                     seg_map_path='SegmentationClass/train2014'),
                 ann_json: Optional[str] = None,
                 tag_sources: Sequence[str] = ('tags_file', 'json', 'masks'),
                 **kwargs) -> None:
        self.ann_json = ann_json
        super().__init__(
            ann_file=ann_file,
            data_prefix=data_prefix,
            tag_sources=tag_sources,
            **kwargs)

    def _load_tag_table(self, source: str,
                        img_ids: Sequence[str]) -> TagTable:
        if source != 'json':
            return super()._load_tag_table(source, img_ids)
        if self.ann_json is None:
            return {}
        path = osp.join(self.data_root or '', self.ann_json)
        if not osp.isfile(path):
            raise FileNotFoundError(f'COCO annotation file not found: {path}')
        coco = COCO(path)
        if coco_class_names(coco) != tuple(self.metainfo['classes']):
            raise ValueError(
                f'{path}: categories (sorted by id) '
                f'{list(coco_class_names(coco))[1:]} differ from the data '
                f'set classes {list(self.metainfo["classes"])[1:]}')
        return coco_tags(coco)
