"""Superpixel methods, plugin lookup and the on-disk cache."""
import os

import numpy as np
import pytest
import torch

from iaffinity_plugins.labels import superpixels as sp_module
from iaffinity_plugins.labels.superpixels import (SuperpixelCache,
                                                  compute_superpixels,
                                                  felzenszwalb_superpixels,
                                                  item_rgb)


def two_halves(height: int = 24, width: int = 32) -> np.ndarray:
    """Left half black, right half white: two obvious segments."""
    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[:, width // 2:] = 255
    return image


@pytest.mark.parametrize('method', ['felzenszwalb', 'slic'])
def test_methods_follow_image_edges(method):
    image = two_halves()
    params = dict(n_segments=2, compactness=1) if method == 'slic' else {}
    sp = compute_superpixels(image, method, **params)
    assert sp.shape == (24, 32) and sp.dtype == np.int32
    assert sp.min() == 0
    # No superpixel straddles the colour edge.
    left, right = set(np.unique(sp[:, :16])), set(np.unique(sp[:, 16:]))
    assert not left & right


def test_unknown_method_and_bad_image_raise():
    with pytest.raises(KeyError, match='no superpixel_method named'):
        compute_superpixels(two_halves(), 'nope')
    with pytest.raises(ValueError, match=r'\(H, W, 3\) uint8'):
        felzenszwalb_superpixels(np.zeros((8, 8), np.uint8))


def test_cache_computes_once_and_separates_params(tmp_path, monkeypatch):
    calls = []
    real = sp_module.compute_superpixels

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(sp_module, 'compute_superpixels', counting)
    image = two_halves()
    cache = SuperpixelCache(str(tmp_path), 'felzenszwalb', scale=50)
    first = cache.get('a', image)
    second = SuperpixelCache(str(tmp_path), 'felzenszwalb',
                             scale=50).get('a', image)
    assert len(calls) == 1
    np.testing.assert_array_equal(first, second)
    assert second.dtype == np.int32
    # Another parameter value never reuses the first folder.
    other = SuperpixelCache(str(tmp_path), 'felzenszwalb', scale=51)
    assert other.folder != cache.folder
    other.get('a', image)
    assert len(calls) == 2


def test_cache_recovers_from_corrupt_file_and_wrong_shape(tmp_path):
    image = two_halves()
    cache = SuperpixelCache(str(tmp_path))
    expected = cache.get('a', image)
    with open(cache.path('a'), 'wb') as f:
        f.write(b'not an npz')
    with pytest.warns(UserWarning, match='corrupt'):
        np.testing.assert_array_equal(cache.get('a', image), expected)
    # The recomputed map replaced the corrupt file.
    with np.load(cache.path('a')) as data:
        np.testing.assert_array_equal(data['superpixels'], expected)
    with pytest.warns(UserWarning, match='has shape'):
        assert cache.get('a', two_halves(30, 32)).shape == (30, 32)
    assert not [n for n in os.listdir(cache.folder) if n.endswith('.tmp')]


def test_item_rgb_turns_the_packed_bgr_tensor_back_into_the_image():
    rng = np.random.default_rng(0)
    bgr = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    # PackSegInputs: the loaded BGR image as a (3, H, W) tensor.
    item = dict(inputs=torch.from_numpy(bgr).permute(2, 0, 1))
    rgb = item_rgb(item)
    assert rgb.shape == (5, 7, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb, bgr[..., ::-1])
