"""Tests for palette PNG label I/O and atomic writes (unreadable labels and
failed writes: tests/test_bad_inputs.py)."""
import os

import numpy as np
import pytest
from PIL import Image

from iaffinity_plugins.labels.label_io import (atomic_save_npz,
                                               atomic_write_bytes, read_label,
                                               voc_palette, write_label)


def devkit_palette(num_colors):
    """The VOC devkit's loop, verbatim in spirit: reference for the test."""
    palette = []
    for j in range(num_colors):
        lab, r, g, b, i = j, 0, 0, 0, 0
        while lab:
            r |= ((lab >> 0) & 1) << (7 - i)
            g |= ((lab >> 1) & 1) << (7 - i)
            b |= ((lab >> 2) & 1) << (7 - i)
            i += 1
            lab >>= 3
        palette.append((r, g, b))
    return np.array(palette, dtype=np.uint8)


def test_voc_palette_matches_devkit():
    palette = voc_palette()
    assert palette.shape == (256, 3) and palette.dtype == np.uint8
    np.testing.assert_array_equal(palette, devkit_palette(256))
    np.testing.assert_array_equal(palette[:4],
                                  [[0, 0, 0], [128, 0, 0], [0, 128, 0],
                                   [128, 128, 0]])
    assert voc_palette(21).shape == (21, 3)


def test_round_trip_palette_png(tmp_path):
    label = np.array([[0, 1, 2], [20, 255, 3]], dtype=np.uint8)
    path = str(tmp_path / 'a.png')
    write_label(path, label)
    np.testing.assert_array_equal(read_label(path), label)
    with Image.open(path) as image:
        assert image.mode == 'P'
        colours = np.array(image.getpalette()[:6]).reshape(2, 3)
    np.testing.assert_array_equal(colours, [[0, 0, 0], [128, 0, 0]])


def test_write_label_accepts_wider_ints_and_custom_palette(tmp_path):
    label = np.array([[0, 1], [1, 0]], dtype=np.int64)
    path = str(tmp_path / 'sub' / 'b.png')  # parent created
    write_label(path, label, palette=np.array([[1, 2, 3], [4, 5, 6]]))
    np.testing.assert_array_equal(read_label(path), label)
    with Image.open(path) as image:
        assert image.getpalette()[:6] == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize('bad', [
    np.zeros((2, 2, 3), np.uint8),
    np.full((2, 2), 256),
    np.full((2, 2), -1),
    np.zeros((2, 2), np.float32),
])
def test_write_label_rejects_bad_arrays(tmp_path, bad):
    with pytest.raises(ValueError, match='x.png'):
        write_label(str(tmp_path / 'x.png'), bad)


def test_read_grayscale_png(tmp_path):
    path = str(tmp_path / 'g.png')
    Image.fromarray(np.array([[3, 255]], np.uint8), mode='L').save(path)
    np.testing.assert_array_equal(read_label(path), [[3, 255]])


def test_atomic_save_npz_exact_path(tmp_path):
    path = str(tmp_path / 'cache.bin')
    atomic_save_npz(path, a=np.arange(3), b=np.eye(2))
    assert os.listdir(tmp_path) == ['cache.bin']
    with np.load(path) as data:
        np.testing.assert_array_equal(data['a'], np.arange(3))
        np.testing.assert_array_equal(data['b'], np.eye(2))


def test_atomic_write_bytes_overwrites(tmp_path):
    path = str(tmp_path / 'm.json')
    atomic_write_bytes(path, b'old')
    atomic_write_bytes(path, b'new')
    assert open(path, 'rb').read() == b'new'
    # permissions follow the umask like open(), not mkstemp's 0o600
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask
