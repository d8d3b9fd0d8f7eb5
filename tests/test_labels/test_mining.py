"""80 % superpixel rule and the region classifier's mining of Sec. 3.3:
'relabel' (the paper: every superpixel re-predicted) and 'confirm'."""
import numpy as np
import pytest
import torch

from iaffinity_plugins.labels.mining import (MINING_MODES, confirm_regions,
                                             labelled_regions, mine_labels,
                                             region_majority, relabel_regions,
                                             superpixel_majority)
from iaffinity_plugins.plugins import get_extension


def one_row(values):
    return np.array([values], dtype=np.uint8)


def test_exactly_80_percent_is_not_kept_81_is():
    # Superpixel 0: 4 of 5 pixels class 1 (exactly 80 %): unknown.
    labels = one_row([1, 1, 1, 1, 2])
    sp = np.zeros_like(labels, dtype=np.int32)
    assert (superpixel_majority(labels, sp) == 255).all()
    # 81 of 100 pixels class 3: kept, the whole superpixel becomes 3.
    labels = np.array([[3] * 81 + [0] * 19], dtype=np.uint8)
    sp = np.zeros_like(labels, dtype=np.int32)
    assert (superpixel_majority(labels, sp) == 3).all()
    labels[0, 0] = 0  # 80 of 100
    assert (superpixel_majority(labels, sp) == 255).all()


def test_unknown_pixels_count_in_the_denominator():
    # 9 pixels: 7 class 2 and 2 unknown -> 7/9 = 77.8 % < 80 %.
    labels = one_row([2] * 7 + [255] * 2)
    # Second superpixel: 5 of 6 class 0 (83 %) with one unknown.
    labels = np.concatenate([labels, one_row([0] * 5 + [255] + [9] * 3)], 1)
    sp = one_row([0] * 9 + [1] * 6 + [2] * 3).astype(np.int64)
    out = superpixel_majority(labels, sp)
    np.testing.assert_array_equal(out, one_row([255] * 9 + [0] * 6 + [9] * 3))
    assert get_extension('miner', 'majority') is superpixel_majority


def test_region_majority_ignores_padding_and_absent_ids():
    labels = torch.tensor([[1, 1, 255], [1, 1, 255]])
    sp = torch.tensor([[0, 0, -1], [0, 2, -1]])
    # id 1 is absent, -1 is padding: region 0 is 3/3 class 1, region 2 1/1.
    assert region_majority(labels, sp).tolist() == [1, 255, 1]
    with pytest.raises(ValueError, match='differ in shape'):
        region_majority(labels, sp[:1])


def test_confirm_regions_thresholds_proposed_class():
    proposal = one_row([1, 1, 255, 2, 2, 0])
    sp = one_row([0, 0, 1, 2, 2, 3])
    ids, classes = labelled_regions(proposal, sp)
    assert ids.tolist() == [0, 2, 3] and classes.tolist() == [1, 2, 0]
    probs = np.array([[0.1, 0.8, 0.1],    # class 1 at 0.8 > 0.7: kept
                      [0.0, 0.3, 0.7],    # class 2 at exactly 0.7: dropped
                      [0.9, 0.1, 0.0]])   # class 0 at 0.9: kept
    mined = confirm_regions(proposal, sp, probs, threshold=0.7)
    np.testing.assert_array_equal(mined, one_row([1, 1, 255, 255, 255, 0]))
    with pytest.raises(ValueError, match='2 rows'):
        confirm_regions(proposal, sp, probs[:2])
    with pytest.raises(ValueError, match='not constant'):
        labelled_regions(one_row([1, 2, 255, 2, 2, 0]), sp)


def test_relabel_regions_takes_the_confident_class_of_every_region():
    sp = one_row([0, 0, 1, 2, 2, 3])
    ids = np.array([0, 1, 2, 3])
    probs = np.array([[0.1, 0.1, 0.8],    # class 2 at 0.8: painted 2
                      [0.05, 0.9, 0.05],  # class 1 at 0.9
                      [0.3, 0.0, 0.7],    # best at exactly 0.7: unknown
                      [0.6, 0.4, 0.0]])   # best below 0.7: unknown
    mined = relabel_regions(sp, ids, probs, threshold=0.7)
    np.testing.assert_array_equal(mined, one_row([2, 2, 1, 255, 255, 255]))
    # Only the scored regions can be labelled.
    np.testing.assert_array_equal(
        relabel_regions(sp, ids[:2], probs[:2]),
        one_row([2, 2, 1, 255, 255, 255]))
    with pytest.raises(ValueError, match='3 rows'):
        relabel_regions(sp, ids, probs[:3])


# ------------------------------------------- mine_labels on hand-made regions
# Classes: background, 1, 2 (tagged) and 3 (not tagged); one 1 x 12 image of
# four 3-pixel superpixels.
HAND_SUPERPIXELS = one_row([0] * 3 + [1] * 3 + [2] * 3 + [3] * 3)
HAND_LABELS = one_row([1, 1, 1,      # 80 % rule: class 1
                       0, 1, 2,      # no class over 80 %: unknown
                       1, 1, 1,      # class 1
                       2, 2, 2])     # class 2
HAND_LOGITS = torch.tensor([
    [0.0, 0.0, 4.0, 0.0],    # region 0: class 2 at 0.96, not its proposed 1
    [3.0, 0.0, 0.0, 0.0],    # region 1: background at 0.91
    [0.0, 0.5, 0.0, 0.0],    # region 2: class 1 at 0.45 only
    [0.0, 0.0, 2.0, 10.0],   # region 3: the untagged class 3 scores highest
])


class HandSuperpixels:
    """A superpixel cache stand-in: the same hand-made superpixels always."""

    def get(self, img_id, rgb):
        assert rgb.shape[:2] == HAND_SUPERPIXELS.shape
        return HAND_SUPERPIXELS


class FixedLogitsClassifier(torch.nn.Module):
    """Region logits from :data:`HAND_LOGITS`, whatever the image."""

    def data_preprocessor(self, data, training):
        return dict(inputs=torch.stack(data['inputs']).float())

    def region_logits(self, inputs, superpixels, region_ids):
        return [HAND_LOGITS[region_ids[0]]]


def mine_by_hand(tmp_path, mode, threshold=0.7, **options):
    from iaffinity_plugins.labels.label_io import read_label, write_label
    write_label(str(tmp_path / 'labels' / 'img0.png'), HAND_LABELS)
    dataset = SceneDataset([np.zeros((1, 12, 3), np.uint8)],
                           [np.array([1, 1, 0], np.float32)])
    dataset.metainfo = dict(classes=('background', 'a', 'b', 'c'))
    out = tmp_path / f'{mode}_{threshold}'
    summary = mine_labels(FixedLogitsClassifier(), dataset,
                          str(tmp_path / 'labels'), str(out),
                          HandSuperpixels(), mode=mode, threshold=threshold,
                          progress=False, **options)
    return read_label(str(out / 'img0.png')), summary


def test_relabel_corrects_regions_and_labels_unknown_ones(tmp_path):
    """The paper's rule: every superpixel re-predicted, whatever the 80 %
    rule says about it."""
    mined, summary = mine_by_hand(tmp_path, 'relabel')
    # region 0: proposed 1, corrected to 2; region 1: unknown by the 80 %
    # rule, labelled background; region 2: 0.45 -> unknown; region 3: class
    # 3 is not tagged, so the softmax over background, 1 and 2 gives 2 at
    # e^2 / (e^2 + 2) = 0.79.
    np.testing.assert_array_equal(
        mined, one_row([2] * 3 + [0] * 3 + [255] * 3 + [2] * 3))
    assert summary['regions_scored'] == 4 and summary['regions_kept'] == 3
    # Above 0.79 the untagged class still never wins: region 3 is unknown.
    mined, _ = mine_by_hand(tmp_path, 'relabel', threshold=0.8)
    np.testing.assert_array_equal(
        mined, one_row([2] * 3 + [0] * 3 + [255] * 6))


def test_confirm_only_keeps_proposed_classes(tmp_path):
    """The same regions under 'confirm': the wrongly proposed region 0 is
    dropped, not corrected, and the unknown region 1 stays unknown."""
    mined, summary = mine_by_hand(tmp_path, 'confirm')
    np.testing.assert_array_equal(mined, one_row([255] * 9 + [2] * 3))
    assert summary['regions_scored'] == 3 and summary['regions_kept'] == 1


@pytest.mark.parametrize('mode', ['relabel', 'confirm'])
def test_the_classifier_reads_the_image_at_the_short_edge(tmp_path,
                                                          monkeypatch, mode):
    """short_edge=s: the region classifier gets the image resized to a
    short edge of s (the 1 x 12 image -> 3 x 36) with the image's own
    superpixels; the mined map keeps the image's size."""
    seen = []
    original = FixedLogitsClassifier.region_logits

    def region_logits(self, inputs, superpixels, region_ids):
        seen.append((tuple(inputs.shape), tuple(superpixels.shape)))
        return original(self, inputs, superpixels, region_ids)

    monkeypatch.setattr(FixedLogitsClassifier, 'region_logits',
                        region_logits)
    native, _ = mine_by_hand(tmp_path / 'native', mode)
    resized, _ = mine_by_hand(tmp_path / 'resized', mode, short_edge=3)
    assert seen == [((1, 3, 1, 12), (1, 1, 12)), ((1, 3, 3, 36), (1, 1, 12))]
    np.testing.assert_array_equal(resized, native)


def test_confirm_with_kept_tags_restores_the_lost_class_from_the_seeds(
        tmp_path):
    """'confirm' drops every class-1 region; the seeds' class-1 pixels
    bring it back (class 2, still present, is left as mined)."""
    from iaffinity_plugins.labels.label_io import write_label
    seeds = tmp_path / 'seeds'
    write_label(str(seeds / 'img0.png'), one_row([0] * 4 + [1] * 2 + [255] * 3
                                                 + [1, 2, 2]))
    mined, summary = mine_by_hand(tmp_path, 'confirm',
                                  keep_tags_from=str(seeds))
    np.testing.assert_array_equal(
        mined, one_row([255] * 4 + [1] * 2 + [255] * 3 + [1, 2, 2]))
    assert summary['restored_tags'] == 1


def test_confirm_keeps_the_previous_steps_objects_before_lost_tags(
        tmp_path):
    """Y_t's objects fill the new map's unknown and background pixels (the
    new map's own class wins); kept class-1 pixels mean no lost tag."""
    from iaffinity_plugins.labels.label_io import write_label
    previous, seeds = tmp_path / 'previous', tmp_path / 'seeds'
    write_label(str(previous / 'img0.png'), one_row([1] * 3 + [0] * 3
                                                    + [2, 2, 255] + [1] * 3))
    write_label(str(seeds / 'img0.png'), np.ones((1, 12), np.uint8))
    mined, summary = mine_by_hand(tmp_path, 'confirm',
                                  keep_objects_from=str(previous),
                                  keep_tags_from=str(seeds))
    np.testing.assert_array_equal(
        mined, one_row([1] * 3 + [255] * 3 + [2, 2, 255] + [2] * 3))
    assert summary['restored_tags'] == 0


@pytest.mark.parametrize('mode', ['confidence', 'nope'])
def test_unknown_mining_modes_name_the_valid_ones(tmp_path, mode):
    with pytest.raises(ValueError, match='relabel.*confirm.*majority.*none'):
        mine_by_hand(tmp_path, mode)
    assert MINING_MODES == ('relabel', 'confirm', 'majority', 'none')


# ---------------------------------------------------------------- mine_labels
NUM_CLASSES = 3
COLOURS_BGR = np.array([[120, 120, 120], [0, 0, 230], [230, 0, 0]])


def scene(rng, size=64):
    """Textured grey background with a red and a blue rectangle."""
    gt = np.zeros((size, size), np.uint8)
    for cls in (1, 2):
        y, x = rng.integers(0, size // 2, 2)
        gt[y:y + size // 3, x:x + size // 3] = cls
    bgr = COLOURS_BGR[gt] + rng.integers(-25, 25, (size, size, 3))
    return gt, np.clip(bgr, 0, 255).astype(np.uint8)


def paint_noise(gt, rng, blobs=6, radius=7):
    """Ground truth with discs of wrong classes painted in."""
    labels = gt.copy()
    yy, xx = np.mgrid[:gt.shape[0], :gt.shape[1]]
    for _ in range(blobs):
        y, x = rng.integers(0, gt.shape[0], 2)
        disc = (yy - y) ** 2 + (xx - x) ** 2 <= radius ** 2
        wrong = (gt[y, x] + rng.integers(1, NUM_CLASSES)) % NUM_CLASSES
        labels[disc] = wrong
    return labels


class SceneDataset:
    """The part of a BaseSegDataset that mine_labels uses."""

    metainfo = dict(classes=('background', 'red', 'blue'))

    def __init__(self, images, tags):
        self.images, self.tags = images, tags

    def __len__(self):
        return len(self.images)

    def get_data_info(self, index):
        return dict(img_id=f'img{index}')

    def prepare_data(self, index):
        from mmseg.structures import SegDataSample
        sample = SegDataSample(metainfo=dict(img_id=f'img{index}',
                                             tags=self.tags[index]))
        return dict(inputs=torch.from_numpy(self.images[index]).permute(
            2, 0, 1).contiguous(), data_samples=sample)


@pytest.fixture(scope='module')
def noisy_folder(tmp_path_factory):
    from iaffinity_plugins.labels.label_io import write_label
    root = tmp_path_factory.mktemp('noisy')
    rng = np.random.default_rng(0)
    gts, images = zip(*[scene(rng) for _ in range(4)])
    for i, gt in enumerate(gts):
        write_label(str(root / 'labels' / f'img{i}.png'),
                    paint_noise(gt, rng))
    tags = [np.ones(NUM_CLASSES - 1, np.float32)] * len(gts)
    return root, list(gts), SceneDataset(list(images), tags)


class OracleClassifier(torch.nn.Module):
    """Probability 1 for the ground-truth majority class of each region."""

    def __init__(self, gts):
        super().__init__()
        self.gts, self.img_id = gts, None

    def data_preprocessor(self, data, training):
        # Remember which image is being scored; region_logits gets no ids.
        self.img_id = data['data_samples'][0].metainfo['img_id']
        return dict(inputs=torch.stack(data['inputs']).float())

    def region_logits(self, inputs, superpixels, region_ids):
        gt = torch.from_numpy(self.gts[int(self.img_id[3:])]).long()
        classes = region_majority(gt, superpixels[0], ratio=0.5)
        logits = torch.full((len(classes), NUM_CLASSES), -1e4)
        found = classes != 255
        logits[found, classes[found]] = 0
        return [logits[region_ids[0]]]


def precision(label_dir, gts):
    from iaffinity_plugins.evaluation.label_metrics import (confusion_matrix,
                                                            label_quality)
    from iaffinity_plugins.labels.label_io import read_label
    confusion = sum(confusion_matrix(read_label(f'{label_dir}/img{i}.png'),
                                     gt, NUM_CLASSES)
                    for i, gt in enumerate(gts))
    return label_quality(confusion)


def mine(root, dataset, mode, model=None, name=None, **kwargs):
    from iaffinity_plugins.labels.superpixels import SuperpixelCache
    cache = SuperpixelCache(str(root / 'sp'), scale=5, sigma=0.5, min_size=10)
    out = root / (name or mode)
    summary = mine_labels(model, dataset, str(root / 'labels'), str(out),
                          cache, mode=mode, progress=False, **kwargs)
    return str(out), summary


def test_oracle_mining_raises_precision(noisy_folder):
    root, gts, dataset = noisy_folder
    before = precision(root / 'labels', gts)
    majority_dir, _ = mine(root, dataset, 'majority')
    majority = precision(majority_dir, gts)
    assert before['precision'] < 80
    mined, scored = {}, {}
    for mode in ('confirm', 'relabel'):
        mined_dir, summary = mine(root, dataset, mode, OracleClassifier(gts))
        mined[mode] = precision(mined_dir, gts)
        assert mined[mode]['precision'] > max(before['precision'],
                                              majority['precision']) + 5
        assert mined[mode]['precision'] > 95
        assert 0 < summary['regions_kept'] <= summary['regions_scored']
        assert summary['images'] == 4 and summary['empty_images'] == []
        scored[mode] = summary['regions_scored']
        # Resumable: a second run skips every image.
        assert mine(root, dataset, mode, OracleClassifier(gts))[1][
            'skipped'] == 4
    # Relabelling scores every superpixel and also keeps the regions whose
    # noisy class the oracle corrects, and those the 80 % rule left unknown.
    assert scored['relabel'] > scored['confirm']
    assert mined['relabel']['labelled_fraction'] > mined['confirm'][
        'labelled_fraction'] + 5


def test_no_mining_copies_labels_and_untagged_regions_drop(noisy_folder):
    from iaffinity_plugins.labels.label_io import read_label
    root, gts, dataset = noisy_folder
    copy_dir, summary = mine(root, dataset, 'none')
    for i in range(4):
        np.testing.assert_array_equal(
            read_label(f'{copy_dir}/img{i}.png'),
            read_label(str(root / 'labels' / f'img{i}.png')))
    # Tag only 'red': no mined pixel may be blue. With a threshold above 1
    # nothing is kept and every image is reported empty.
    red_only = SceneDataset(dataset.images, [np.array([1, 0], np.float32)] * 4)
    out, _ = mine(root, red_only, 'majority', name='red_only')
    assert not any((read_label(f'{out}/img{i}.png') == 2).any()
                   for i in range(4))
    _, summary = mine(root, dataset, 'relabel', OracleClassifier(gts),
                      name='strict', threshold=1.0)
    assert len(summary['empty_images']) == 4
    for mode in ('relabel', 'confirm'):
        with pytest.raises(ValueError, match='needs a region classifier'):
            mine(root, dataset, mode, name='no_model')
    with pytest.raises(ValueError, match='unknown mining mode'):
        mine(root, dataset, 'nope')


@pytest.mark.slow
def test_trained_classifier_mining_raises_precision(noisy_folder):
    """End to end: a tiny RegionClassifier trained briefly on the noisy
    labels themselves removes more noise than the 80 % rule alone, under
    both classifier modes."""
    from mmengine.optim import OptimWrapper
    from mmengine.structures import PixelData

    from iaffinity_plugins.labels.label_io import read_label
    from iaffinity_plugins.labels.superpixels import SuperpixelCache
    from iaffinity_plugins.models.segmentors.region_classifier import \
        RegionClassifier
    root, gts, dataset = noisy_folder
    cache = SuperpixelCache(str(root / 'sp'), scale=5, sigma=0.5, min_size=10)
    items = [dataset.prepare_data(i) for i in range(len(dataset))]
    for i, item in enumerate(items):
        labels = read_label(str(root / 'labels' / f'img{i}.png'))
        superpixels = cache.get(f'img{i}', dataset.images[i][..., ::-1].copy())
        item['data_samples'].gt_sem_seg = PixelData(
            data=torch.from_numpy(labels.astype(np.int64))[None])
        item['data_samples'].gt_superpixels = PixelData(
            data=torch.from_numpy(superpixels.astype(np.int64))[None])
    model = RegionClassifier(
        backbone=dict(type='ResNetV1c', depth=18, stem_channels=8,
                      base_channels=8, out_indices=(1, ),
                      strides=(1, 2, 1, 1), dilations=(1, 1, 1, 1)),
        in_channels=16, hidden_channels=32, num_classes=NUM_CLASSES,
        dropout=0.0,
        data_preprocessor=dict(type='SegDataPreProcessor', mean=[128.0] * 3,
                               std=[64.0] * 3, bgr_to_rgb=True,
                               size_divisor=8))
    optim = OptimWrapper(torch.optim.Adam(model.parameters(), lr=3e-3))
    batch = dict(inputs=[item['inputs'] for item in items],
                 data_samples=[item['data_samples'] for item in items])
    for _ in range(40):
        model.train_step(batch, optim)
    before = precision(root / 'labels', gts)['precision']
    majority = precision(mine(root, dataset, 'majority',
                              name='majority_ref')[0], gts)['precision']
    confirm, relabel = (precision(mine(root, dataset, mode, model,
                                       name=f'trained_{mode}')[0], gts)
                        for mode in ('confirm', 'relabel'))
    assert before < majority < confirm['precision'] - 2, (before, majority,
                                                          confirm)
    # Relabelling keeps more (the corrected regions and those the 80 % rule
    # left unknown) at a precision still above the rule's: measured 69.1
    # vs 67.3 precision, 86 vs 75 % labelled and 54.1 vs 49.2 mIoU.
    assert relabel['precision'] > majority, (majority, relabel)
    assert relabel['labelled_fraction'] > confirm['labelled_fraction'] + 5
    assert relabel['miou'] > confirm['miou'] + 2, (confirm, relabel)
