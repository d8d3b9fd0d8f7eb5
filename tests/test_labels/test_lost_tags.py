"""A tagged class that a label map lost gets its fallback pixels back."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from iaffinity_plugins.labels import refinement
from iaffinity_plugins.labels.label_io import read_label, write_label
from iaffinity_plugins.labels.lost_tags import restore_lost_tags


def test_restores_only_lost_tagged_classes():
    labels = np.array([[0, 0, 1, 255],
                       [0, 0, 1, 255]], dtype=np.uint8)
    fallback = np.array([[2, 2, 1, 1],
                         [3, 0, 255, 2]], dtype=np.uint8)
    # tags: classes 1 and 2 (3 is in the fallback but not tagged)
    restored, lost = restore_lost_tags(labels, np.array([1, 1, 0]),
                                       fallback)
    assert lost == [2]
    assert restored.tolist() == [[2, 2, 1, 255],
                                 [0, 0, 1, 2]]
    assert labels[0, 0] == 0  # the input is left as it was


def test_nothing_lost_returns_the_map_itself_and_bad_sizes_raise():
    labels = np.array([[0, 1], [2, 255]], dtype=np.uint8)
    restored, lost = restore_lost_tags(labels, np.array([1, 1]),
                                       np.zeros((2, 2), np.uint8))
    assert lost == [] and restored is labels
    # a lost tag the fallback does not have either stays lost
    restored, lost = restore_lost_tags(np.zeros((2, 2), np.uint8),
                                       np.array([1]),
                                       np.zeros((2, 2), np.uint8))
    assert lost == [1] and not restored.any()
    with pytest.raises(ValueError, match='differ in size'):
        restore_lost_tags(labels, np.array([1, 1]),
                          np.zeros((3, 2), np.uint8))


class TwoImages:
    """The two items write_label_maps needs: an id and the tags."""

    def __init__(self):
        self.items = [dict(inputs=None, data_samples=SimpleNamespace(
            metainfo=dict(tags=np.array(tags)))) for tags in ([1, 1],
                                                              [0, 1])]

    def __len__(self):
        return len(self.items)

    def get_data_info(self, index):
        return dict(img_id=f'img{index}')

    def prepare_data(self, index):
        return self.items[index]


def test_write_label_maps_restores_lost_tags_from_the_seeds(tmp_path,
                                                           monkeypatch):
    """Image 0 lost class 2 (its seeds have it), image 1 lost nothing."""
    refined = {0: np.array([[0, 1], [0, 0]], np.uint8),
               1: np.array([[2, 0], [0, 0]], np.uint8)}
    seeds_dir = tmp_path / 'seeds'
    seeds_dir.mkdir()
    write_label(str(seeds_dir / 'img0.png'),
                np.array([[2, 1], [255, 2]], np.uint8))
    write_label(str(seeds_dir / 'img1.png'), np.zeros((2, 2), np.uint8))
    calls = iter([0, 1])

    def fake_refine_image(unary, refiner, item, min_confidence,
                          short_edge, superpixels):
        index = next(calls)
        maps = dict(unary=refined[index], refined=refined[index])
        return {name: torch.from_numpy(m) for name, m in maps.items()}

    monkeypatch.setattr(refinement, 'refine_image', fake_refine_image)
    out = tmp_path / 'refined'
    summary = refinement.write_label_maps(
        None, None, TwoImages(), dict(refined=str(out)), progress=False,
        keep_tags_from=str(seeds_dir))
    assert summary == dict(images=2, restored_tags=1)
    assert read_label(str(out / 'img0.png')).tolist() == [[2, 1], [0, 2]]
    assert read_label(str(out / 'img1.png')).tolist() == [[2, 0], [0, 0]]
    with pytest.raises(ValueError, match="no 'refined'"):
        refinement.write_label_maps(None, None, TwoImages(),
                                    dict(unary=str(tmp_path / 'u')),
                                    keep_tags_from=str(seeds_dir))
    # a seed map of another size names its file
    write_label(str(seeds_dir / 'img0.png'), np.zeros((3, 3), np.uint8))
    calls = iter([0])
    with pytest.raises(ValueError, match='img0.png.*differ in size'):
        refinement.write_label_maps(
            None, None, TwoImages(), dict(refined=str(tmp_path / 'r2')),
            progress=False, keep_tags_from=str(seeds_dir))
