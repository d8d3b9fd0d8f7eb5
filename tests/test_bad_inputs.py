"""Bad inputs: each case fails with an error naming the file, line or key,
and nothing written before the failure is lost.

Cases: corrupt images, truncated or unreadable label PNGs, label values
outside the class list, label/image size mismatch, bad data set folders
(empty or missing split file, unknown tag classes, ...), configs naming a
missing or mismatched checkpoint, a full disk while a label folder is
written, and the bad photographs of a user's own data set
(``deeplab_lite0_custom.py``: VOC layout, tags from the masks). The broken
files are fabricated with the helpers of the tests that cover the good
cases (``test_datasets/voc_fabrication.py``, ...).
"""
import errno
import os
import os.path as osp
import shutil
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from PIL import Image
# Fabrication helpers and fixtures (files, voc_folder) of the good cases.
from test_datasets.voc_fabrication import (CLASSES, build_voc_layout,
                                           fabricate_voc_layout, mask_with)
from test_labels.test_seeds import (TINY_RESNET, make_seeds,
                                    make_seeds_config, save_random_init)
from test_tools.test_eval_labels import voc_folder  # noqa: F401
from test_transforms.test_image_loading import (  # noqa: F401
    files, label_results)
from tool_scripts import load_tool

from iaffinity_plugins.datasets.voc_layout import VOCLayoutDataset
from iaffinity_plugins.engine.checkpoint import load_checkpoint_strict
from iaffinity_plugins.engine.stage_runner import FINAL_WEIGHTS, train_stage
from iaffinity_plugins.evaluation.label_metrics import evaluate_label_dir
from iaffinity_plugins.labels.label_io import (check_label_values,
                                               read_label, write_label)
from iaffinity_plugins.labels.label_writer import OPTIONS_FILE
from iaffinity_plugins.labels.mining import mine_labels
from iaffinity_plugins.labels.superpixels import SuperpixelCache
from iaffinity_plugins.registry import DATASETS, TRANSFORMS

IMAGES_ONLY = [dict(type='LoadImageWithCheck'), dict(type='PackWSSSInputs')]
WITH_LABELS = [dict(type='LoadImageWithCheck'),
               dict(type='LoadAnnotationsWithCheck'),
               dict(type='PackWSSSInputs')]


def truncate(path) -> None:
    """Cut a file to half its bytes, like an interrupted copy."""
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def truncate_jpeg_scan(path) -> None:
    """Cut a JPEG halfway through its image data, its header intact (an
    interrupted copy of a photograph: its size can still be read)."""
    data = path.read_bytes()
    start = data.index(b'\xff\xda')  # start of scan
    path.write_bytes(data[:start + (len(data) - start) // 2])


def label_bytes(folder) -> dict:
    """``{file name: bytes}`` of every file in ``folder`` (temp files too)."""
    return {name: (folder / name).read_bytes()
            for name in sorted(os.listdir(folder))}


# ------------------------------------------------------------ image files
@pytest.mark.parametrize('name',
                         ['truncated.jpg', 'garbage.jpg', 'empty.jpg'])
def test_corrupt_image_error_names_the_file(files, name):
    load = TRANSFORMS.build(dict(type='LoadImageWithCheck'))
    with pytest.raises(OSError, match=f'cannot load image .*{name}'):
        load(dict(img_path=str(files / name)))


def test_missing_image_keeps_file_not_found(files):
    load = TRANSFORMS.build(dict(type='LoadImageWithCheck'))
    with pytest.raises(FileNotFoundError, match='absent.jpg'):
        load(dict(img_path=str(files / 'absent.jpg')))


# ------------------------------------------------------------ label files
def test_unreadable_label_errors_name_the_file(files):
    truncate(files / 'label.png')
    load = TRANSFORMS.build(dict(type='LoadAnnotationsWithCheck'))
    for name in ('label.png', 'broken.png'):
        with pytest.raises(ValueError, match=f'cannot decode .*{name}'):
            read_label(str(files / name))
        with pytest.raises(OSError, match=f'cannot load label map .*{name}'):
            load(label_results(files / name))
    with pytest.raises(FileNotFoundError, match='missing.png'):
        read_label(str(files / 'missing.png'))
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(files / 'rgb.png')
    with pytest.raises(ValueError, match="rgb.png.*'RGB'"):
        read_label(str(files / 'rgb.png'))


def test_check_label_values():
    check_label_values(np.array([[0, 2, 255]]), 3, 'ok.png')
    with pytest.raises(ValueError, match=r'bad.png.*\[3, 7\]'):
        check_label_values(np.array([[0, 3, 7, 255]]), 3, 'bad.png')


def test_mask_value_outside_class_list(tmp_path):
    root = fabricate_voc_layout(tmp_path, {'a': mask_with(1), 'b': None})
    write_label(str(tmp_path / 'SegmentationClass/b.png'), mask_with(1, 9))
    with pytest.raises(ValueError, match=r'b\.png has values \[9\]'):
        build_voc_layout(root)


def test_eval_labels_tool_names_bad_files(voc_folder):
    tmp_path, config = voc_folder
    write_label(str(tmp_path / 'labels' / 'a.png'), np.full((2, 4), 3,
                                                            np.uint8))
    with pytest.raises(ValueError, match=r'a\.png has values \[3\]'):
        load_tool('eval_labels.py').main([str(tmp_path / 'labels'), '--dataset-config',
                          config])
    with pytest.raises(FileNotFoundError, match='label folder not found'):
        load_tool('eval_labels.py').main([str(tmp_path / 'nope'), '--dataset-config',
                          config])


def test_label_size_differs_from_image(tmp_path):
    """The data set (when the mask gives the tags), training pipelines and
    the label evaluation name both files."""
    root = fabricate_voc_layout(tmp_path / 'data', {'a': mask_with(1)})
    write_label(osp.join(root, 'SegmentationClass', 'a.png'),
                mask_with(1, shape=(8, 16)))
    with pytest.raises(ValueError,
                       match=r'a\.png is \(8, 16\).*a\.jpg is \(12, 16\)'):
        build_voc_layout(root)
    # With a tags file the data set does not read the masks.
    (tmp_path / 'data' / 'tags.txt').write_text('a cat\n')
    with DefaultScope.overwrite_default_scope('mmseg'):
        dataset = build_voc_layout(root, tags_file='tags.txt',
                                   pipeline=WITH_LABELS)
    with pytest.raises(ValueError,
                       match=r'a\.png is \(8, 16\).*a\.jpg is \(12, 16\)'):
        dataset.prepare_data(0)
    write_label(str(tmp_path / 'labels' / 'a.png'), mask_with(1))
    with pytest.raises(ValueError, match=r'labels/a\.png has shape \(12, 16'
                       r'\) but its ground truth .*a\.png \(8, 16\)'):
        evaluate_label_dir(str(tmp_path / 'labels'), dataset)


# --------------------------------------- a label folder written over bad items
IMG_IDS = ('a', 'b', 'c', 'd')


def mine(root: str, label_dir, out_dir) -> dict:
    """The 80 % rule over the folder's images (a label-writing stage)."""
    with DefaultScope.overwrite_default_scope('mmseg'):
        dataset = build_voc_layout(root, pipeline=IMAGES_ONLY)
    cache = SuperpixelCache(osp.join(root, 'superpixels'), scale=5,
                            min_size=4)
    return mine_labels(None, dataset, str(label_dir), str(out_dir), cache,
                       mode='majority', progress=False)


@pytest.fixture
def label_folder(tmp_path):
    """Images a..d, their masks as input labels, the mined labels of a
    clean run in ``reference/``, and ``mined/`` holding a.png (an earlier,
    interrupted run)."""
    masks = {img_id: mask_with(1 + i % 3, 2) for i, img_id in
             enumerate(IMG_IDS)}
    root = fabricate_voc_layout(tmp_path / 'data', masks)
    for img_id, mask in masks.items():
        write_label(str(tmp_path / 'labels' / f'{img_id}.png'), mask)
    mine(root, tmp_path / 'labels', tmp_path / 'reference')
    (tmp_path / 'mined').mkdir()
    shutil.copy(tmp_path / 'reference' / 'a.png', tmp_path / 'mined')
    return root, tmp_path


def make_c_bad(kind: str, root: str, label_dir) -> None:
    """Break image c's input (its image or its label) in one way."""
    if kind == 'corrupt JPEG':
        truncate_jpeg_scan(Path(root) / 'JPEGImages' / 'c.jpg')
    elif kind == 'truncated PNG label':
        truncate(label_dir / 'c.png')
    elif kind == 'label value out of range':
        write_label(str(label_dir / 'c.png'), mask_with(1, 9))
    else:
        write_label(str(label_dir / 'c.png'), mask_with(1, shape=(8, 16)))


@pytest.mark.parametrize('kind, error, message', [
    ('corrupt JPEG', OSError, r'cannot load image .*c\.jpg'),
    ('truncated PNG label', ValueError, r'cannot decode label map .*c\.png'),
    ('label value out of range', ValueError, r'c\.png has values \[9\]'),
    ('label size differs from image', ValueError,
     r'c\.png has shape \(8, 16\) but the image c is \(12, 16\)'),
])
def test_bad_item_stops_label_writing_and_keeps_written_labels(
        label_folder, kind, error, message):
    root, tmp_path = label_folder
    make_c_bad(kind, root, tmp_path / 'labels')
    with pytest.raises(error, match=message):
        mine(root, tmp_path / 'labels', tmp_path / 'mined')
    reference = label_bytes(tmp_path / 'reference')
    # a.png (from before) untouched, b.png written, no temp file left.
    assert label_bytes(tmp_path / 'mined') == {
        name: reference[name] for name in ('a.png', 'b.png')}


def written_file(failing: str, args: tuple) -> str:
    """The label an ``os.fsync(fd)`` / ``os.replace(tmp, dst)`` call of
    ``atomic_write_bytes`` writes (its temp file is ``.<name>.<hex>.tmp``)."""
    if failing == 'replace':
        return osp.basename(args[1])
    temp = osp.basename(os.readlink(f'/proc/self/fd/{args[0]}'))
    return temp[1:].rsplit('.', 2)[0]


@pytest.mark.parametrize('failing', ['fsync', 'replace'])
def test_disk_full_while_writing_a_label_folder(label_folder, monkeypatch,
                                                failing):
    """ENOSPC on c.png: the error names it, a.png (from before) and b.png
    stay intact, and once space is freed the same call completes the
    folder, skipping the labels already there."""
    root, tmp_path = label_folder
    real = getattr(os, failing)

    def disk_full_at_c(*args):
        if written_file(failing, args) == 'c.png':
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(*args)

    monkeypatch.setattr(os, failing, disk_full_at_c)
    with pytest.raises(OSError, match=r'cannot write .*mined/c\.png: No '
                       'space left on device') as error:
        mine(root, tmp_path / 'labels', tmp_path / 'mined')
    assert error.value.errno == errno.ENOSPC
    monkeypatch.undo()
    reference = label_bytes(tmp_path / 'reference')
    assert label_bytes(tmp_path / 'mined') == {
        name: reference[name] for name in ('a.png', 'b.png')}
    summary = mine(root, tmp_path / 'labels', tmp_path / 'mined')
    assert summary['skipped'] == 2 and summary['images'] == 2
    assert label_bytes(tmp_path / 'mined') == reference


@pytest.mark.parametrize('failing', ['fsync', 'replace'])
def test_disk_full_while_overwriting_keeps_the_old_label(
        tmp_path, monkeypatch, failing):
    path = str(tmp_path / 'label.png')
    old = np.ones((4, 4), np.uint8)
    write_label(path, old)

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, failing, disk_full)
    with pytest.raises(OSError, match=r'cannot write .*label\.png: No space'):
        write_label(path, np.zeros((4, 4), np.uint8))
    monkeypatch.undo()
    np.testing.assert_array_equal(read_label(path), old)
    assert os.listdir(tmp_path) == ['label.png']


# ------------------------------------------------------ data set folders
def test_missing_data_root(tmp_path):
    with pytest.raises(FileNotFoundError, match='data_root not found'):
        build_voc_layout(tmp_path / 'absent')


def test_missing_split_file(tmp_path):
    root = fabricate_voc_layout(tmp_path, {'a': mask_with(1)})
    with pytest.raises(FileNotFoundError, match='val.txt'):
        build_voc_layout(root, ann_file='ImageSets/Segmentation/val.txt')


@pytest.mark.parametrize('content', ['', '\n  \n'])
def test_empty_split_file(tmp_path, content):
    root = fabricate_voc_layout(tmp_path, {'a': mask_with(1)})
    (tmp_path / 'ImageSets/Segmentation/train.txt').write_text(content)
    with pytest.raises(ValueError,
                       match=r'split file .*train\.txt lists no image id'):
        build_voc_layout(root)


def test_image_listed_but_missing(tmp_path):
    root = fabricate_voc_layout(tmp_path, {'a': mask_with(1)})
    with open(tmp_path / 'ImageSets/Segmentation/train.txt', 'a') as f:
        f.write('ghost\n')
    with pytest.raises(FileNotFoundError,
                       match=r'ghost\.jpg listed in .*train.txt line 2'):
        build_voc_layout(root)


def test_duplicate_image_ids(tmp_path):
    root = fabricate_voc_layout(tmp_path, {'a': mask_with(1)})
    with open(tmp_path / 'ImageSets/Segmentation/train.txt', 'a') as f:
        f.write('a\n')
    with pytest.raises(ValueError,
                       match=r'train.txt line 2: duplicate .*line 1'):
        build_voc_layout(root)


@pytest.mark.parametrize('line, message', [
    ('a cow', "tags.txt line 2: 'cow' is not a foreground class"),
    ('a background', "tags.txt line 2: 'background' is not a foreground"),
    ('b dog', "tags.txt line 2: duplicate image id 'b'"),
])
def test_bad_tags_file_lines(tmp_path, line, message):
    root = fabricate_voc_layout(tmp_path, {'a': mask_with(1)})
    (tmp_path / 'tags.txt').write_text(f'b cat\n{line}\n')
    with pytest.raises(ValueError, match=message):
        build_voc_layout(root, tags_file='tags.txt')


def test_no_tags_line_and_no_mask_is_an_error(tmp_path):
    root = fabricate_voc_layout(tmp_path, {'a': mask_with(1), 'b': None})
    (tmp_path / 'tags.txt').write_text('a cat\n')
    with pytest.raises(ValueError, match=r"'b'.*train.txt line 2"):
        build_voc_layout(root, tags_file='tags.txt')


def test_unknown_tag_source(tmp_path):
    root = fabricate_voc_layout(tmp_path, {'a': mask_with(1)})
    with pytest.raises(ValueError, match="unknown tag sources \\['xml'\\]"):
        build_voc_layout(root, tag_sources=('xml', ))


def test_class_subset_is_rejected(tmp_path):
    # VOCLayoutDataset has no METAINFO classes; subclasses with fixed
    # classes refuse subsets because tags would be misaligned.
    root = fabricate_voc_layout(tmp_path, {'a': mask_with(1)})

    class Fixed(VOCLayoutDataset):
        METAINFO = dict(classes=CLASSES)

    with pytest.raises(ValueError, match='class subsets'):
        Fixed(data_root=root, metainfo=dict(classes=CLASSES[:2]))


# ------------------------------------------------------------ checkpoints
def test_missing_checkpoint_is_named(tmp_path):
    config = make_seeds_config(tmp_path)
    model = save_random_init(config, tmp_path / 'cam.pth')
    missing = str(tmp_path / 'nothere.pth')
    with pytest.raises(FileNotFoundError, match='nothere.pth'):
        load_checkpoint_strict(model, missing)
    with pytest.raises(FileNotFoundError, match='nothere.pth'):
        make_seeds.main([config, missing, '--out', str(tmp_path / 'seeds')])
    assert not (tmp_path / 'seeds').exists()


def test_checkpoint_of_another_model_names_the_keys(tmp_path):
    config = make_seeds_config(tmp_path)
    checkpoint = tmp_path / 'cam.pth'
    state = save_random_init(config, checkpoint).state_dict()
    state['classifier.weight'] = state['classifier.weight'][:2]
    state['extra.weight'] = torch.zeros(1)
    del state['backbone.stem.0.weight']
    torch.save(dict(state_dict=state), checkpoint)
    with pytest.raises(RuntimeError) as error:
        make_seeds.main([config, str(checkpoint), '--out',
                         str(tmp_path / 'seeds')])
    message = str(error.value)
    for expected in ('cam.pth', 'backbone.stem.0.weight', 'extra.weight',
                     'classifier.weight'):
        assert expected in message


def test_stage_with_missing_pretrained_checkpoint(tmp_path):
    """A stage config whose backbone starts from a checkpoint that is not
    there fails naming it, and the stage records no final weights."""
    runtime = Config.fromfile(make_seeds_config(tmp_path))
    model = runtime.model.to_dict()
    model['backbone']['init_cfg'] = dict(
        type='Pretrained', checkpoint=str(tmp_path / 'pretrained' / 'r18.pth'))
    stage = dict(model=model, pipeline=IMAGES_ONLY, batch_size=1,
                 num_workers=0,
                 optim_wrapper=dict(type='OptimWrapper',
                                    optimizer=dict(type='SGD', lr=0.01)),
                 train_cfg=dict(type='IterBasedTrainLoop', max_iters=1))
    work_dir = tmp_path / 'cam'
    with pytest.raises(FileNotFoundError, match=r'pretrained/r18\.pth'):
        train_stage(stage, runtime, str(work_dir), 'seeds/cam')
    assert not (work_dir / FINAL_WEIGHTS).exists()


# ------------------------- own photographs (deeplab_lite0_custom.py)
OWN_DATA_CONFIG = (Path(__file__).parents[1] / 'configs' / 'iaffinity' /
                   'deeplab_lite0_custom.py')


@pytest.fixture
def own_data(tmp_path):
    """A folder as a user brings it (photographs a..d with masks, no tags
    file) and a make_seeds config over the own-data config's data set and
    infer pipeline, with a tiny CAM classifier and its checkpoint."""
    root = fabricate_voc_layout(tmp_path / 'photos', {
        img_id: mask_with(1 + i % 3) for i, img_id in enumerate(IMG_IDS)})
    config = tmp_path / 'seeds_own_data.py'
    config.write_text(f"""
_base_ = [{str(OWN_DATA_CONFIG)!r}]
model = dict(_delete_=True, type='CAMClassifier', backbone={TINY_RESNET!r},
             in_channels=16, num_classes=3, data_preprocessor=dict(
                 type='SegDataPreProcessor', mean=[128.0] * 3,
                 std=[64.0] * 3, bgr_to_rgb=True))
cam_cfg = dict(scales=(1.0, ), flip=False)
seed_cfg = dict(type='threshold', fg_threshold=0.3, bg_threshold=0.05)
""")
    save_random_init(str(config), tmp_path / 'cam.pth')
    return Path(root), tmp_path


def own_data_seeds(tmp_path, root) -> dict:
    """make_seeds as a user runs it: ``--cfg-options data_root=PATH``."""
    return make_seeds.main([
        str(tmp_path / 'seeds_own_data.py'), str(tmp_path / 'cam.pth'),
        '--out', str(tmp_path / 'seeds'), '--cfg-options',
        f'data_root={root}'
    ])


def own_data_val_set(root, tags: bool):
    """The own-data config's validation set (test pipeline) over ``root``;
    with ``tags`` a tags file gives the tags, so the masks are not read
    when the data set is built."""
    cfg = Config.fromfile(str(OWN_DATA_CONFIG))
    dataset = dict(cfg.val_dataloader.dataset, data_root=str(root),
                   ann_file='ImageSets/Segmentation/train.txt')
    if tags:
        (root / 'tags.txt').write_text(
            ''.join(f'{img_id} cat\n' for img_id in IMG_IDS))
    with DefaultScope.overwrite_default_scope('mmseg'):
        return DATASETS.build(dataset)


def make_photo_bad(kind: str, root: Path) -> None:
    """Break image c of an own-data folder in one way."""
    if kind == 'JPEG header cut':
        truncate(root / 'JPEGImages' / 'c.jpg')
    elif kind == 'mask of another size':
        write_label(str(root / 'SegmentationClass' / 'c.png'),
                    mask_with(1, shape=(8, 16)))
    elif kind == 'class index above the class list':
        write_label(str(root / 'SegmentationClass' / 'c.png'),
                    mask_with(1, 4))
    elif kind == 'empty train.txt':
        (root / 'ImageSets' / 'Segmentation' / 'train.txt').write_text('')
    else:  # no tags file and no mask
        (root / 'SegmentationClass' / 'c.png').unlink()


@pytest.mark.parametrize('kind, error, message', [
    ('JPEG header cut', OSError, r'cannot load image .*c\.jpg'),
    ('mask of another size', ValueError,
     r'label map .*c\.png is \(8, 16\) \(H, W\) but its image .*c\.jpg is '
     r'\(12, 16\)'),
    ('class index above the class list', ValueError,
     r'label map .*c\.png has values \[4\] outside the 4 classes'),
    ('empty train.txt', ValueError,
     r'split file .*train\.txt lists no image id'),
    ('no tags, no mask', ValueError,
     r"no tags for image 'c' \(.*train\.txt line 3\).*tags file: "
     r'.*tags\.txt, ground-truth mask: .*c\.png, missing'),
])
def test_own_data_fails_before_writing_labels(own_data, kind, error,
                                              message):
    """What the data set sees when it is built (the masks give the tags)
    stops the tool before it makes its label folder."""
    root, tmp_path = own_data
    make_photo_bad(kind, root)
    with pytest.raises(error, match=message):
        own_data_seeds(tmp_path, root)
    assert not (tmp_path / 'seeds').exists()


def test_own_data_truncated_photo_stops_seeds_and_resumes(own_data):
    """A photograph cut in its image data (its header, and so its size,
    intact) fails when loaded, naming it: the seeds before it stay, none is
    written for it or after it, and once it is replaced the same command
    writes the rest."""
    root, tmp_path = own_data
    photo = root / 'JPEGImages' / 'c.jpg'
    good = photo.read_bytes()
    truncate_jpeg_scan(photo)
    with pytest.raises(OSError, match=r'cannot load image .*photos/'
                       r'JPEGImages/c\.jpg'):
        own_data_seeds(tmp_path, root)
    # No temp file, no c.png: the folder is not complete, and a rerun
    # (which skips the labels that exist) does not take it for complete.
    assert list(label_bytes(tmp_path / 'seeds')) == [
        'a.png', 'b.png', OPTIONS_FILE]
    photo.write_bytes(good)
    summary = own_data_seeds(tmp_path, root)
    assert (summary['skipped'], summary['written']) == (2, 2)
    assert list(label_bytes(tmp_path / 'seeds')) == [
        *(f'{img_id}.png' for img_id in IMG_IDS), OPTIONS_FILE]


def test_own_data_all_background_photo_is_kept_with_a_warning(own_data):
    """A mask without any class gives no tag: a legitimate all-background
    photograph, kept and logged, and its seed label is all background."""
    root, tmp_path = own_data
    write_label(str(root / 'SegmentationClass' / 'd.png'), mask_with())
    with mock.patch('iaffinity_plugins.datasets.voc_layout.print_log') as log:
        summary = own_data_seeds(tmp_path, root)
    messages = ' '.join(call.args[0] for call in log.call_args_list)
    assert 'tags file' in messages and 'come from the ground-truth masks' \
        in messages
    assert "1 of 4 images in" in messages and "['d']" in messages
    assert summary['written'] == 4 and summary['empty_tags'] == 1
    assert (read_label(str(tmp_path / 'seeds' / 'd.png')) == 0).all()


@pytest.mark.parametrize('kind, message', [
    ('mask of another size',
     r'label map .*c\.png is \(8, 16\) \(H, W\) but its image .*c\.jpg'),
    ('class index above the class list',
     r'label map .*c\.png has values \[4\] outside the 4 classes'),
])
def test_own_data_bad_mask_with_a_tags_file_fails_in_validation(
        own_data, kind, message):
    """With a tags file the masks serve only for evaluation: the test
    pipeline refuses the bad one naming it (mmseg's IoU metric would
    silently drop a value outside the classes)."""
    root, _ = own_data
    make_photo_bad(kind, root)
    dataset = own_data_val_set(root, tags=True)
    for index in (0, 1, 3):
        dataset.prepare_data(index)
    with pytest.raises(ValueError, match=message):
        dataset.prepare_data(2)


def save_turned_photo(path: Path, shape) -> None:
    """A JPEG stored (H, W) = ``shape`` whose EXIF orientation (6: turn
    90 degrees clockwise) makes viewers, and mmcv, show it (W, H)."""
    image = Image.fromarray(np.zeros((*shape, 3), np.uint8))
    exif = image.getexif()
    exif[0x0112] = 6
    image.save(path, exif=exif)


def test_own_data_phone_photo_turned_by_exif(own_data):
    """A phone's photograph (EXIF orientation) loads turned: its mask must
    fit the turned image; one drawn on the stored pixels is refused with a
    hint, when the data set is built."""
    root, _ = own_data
    save_turned_photo(root / 'JPEGImages' / 'c.jpg', (12, 16))
    with pytest.raises(ValueError, match=r'c\.png is \(12, 16\) \(H, W\) '
                       r'but its image .*c\.jpg is \(16, 12\) \(turned by '
                       r'90 degrees: .*EXIF orientation'):
        own_data_val_set(root, tags=False)
    write_label(str(root / 'SegmentationClass' / 'c.png'),
                mask_with(1, shape=(16, 12)))
    item = own_data_val_set(root, tags=False).prepare_data(2)
    # Loaded turned (the val pipeline then reads it at its short edge).
    assert item['data_samples'].ori_shape == (16, 12)
    assert item['data_samples'].gt_sem_seg.data.shape[1:] == (16, 12)
