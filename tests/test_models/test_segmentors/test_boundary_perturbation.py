"""Tests of the boundary perturbation of the pairwise net's training input."""
import numpy as np
import pytest
import torch
from scipy import ndimage as ndi

from iaffinity_plugins.models.segmentors.boundary_perturbation import \
    perturb_boundaries


def square_probs():
    """(1, 3, 12, 12): a confident 4 x 4 object of class 1, class 2
    absent, background elsewhere."""
    probs = torch.zeros(1, 3, 12, 12)
    probs[0, 1, 4:8, 4:8] = 0.9
    probs[0, 0] = 1 - probs[0, 1]
    return probs


def reference(probs, radius, grow):
    """The same operation with scipy's grey morphology, per channel."""
    size = 2 * radius + 1
    maps = probs[0].numpy()
    dilate = [ndi.grey_dilation(m, size=(size, size), mode='constant',
                                cval=-np.inf) for m in maps]
    erode = [ndi.grey_erosion(m, size=(size, size), mode='constant',
                              cval=np.inf) for m in maps]
    objects, background = (dilate, erode) if grow else (erode, dilate)
    moved = np.stack([background[0], *objects[1:]])
    return torch.from_numpy(moved / moved.sum(0, keepdims=True))[None]


@pytest.mark.parametrize('seed', range(6))
def test_grows_or_shrinks_like_grey_morphology(seed):
    probs = square_probs()
    torch.manual_seed(seed)
    out = perturb_boundaries(probs, max_radius=2)
    candidates = [reference(probs, r, grow) for r in (1, 2)
                  for grow in (True, False)]
    assert any(torch.allclose(out, c.float(), atol=1e-6)
               for c in candidates)
    torch.testing.assert_close(out.sum(1), torch.ones(1, 12, 12))
    assert out[:, 2].abs().max() == 0  # an absent class stays absent
    assert not torch.equal(out, probs)


def test_both_directions_and_radii_occur():
    probs = square_probs()
    object_areas = set()
    for seed in range(40):
        torch.manual_seed(seed)
        out = perturb_boundaries(probs, max_radius=2)
        object_areas.add(int((out.argmax(1) == 1).sum()))
    # 4 x 4 object: grown to 6 x 6 or 8 x 8, shrunk to 2 x 2 or gone
    assert object_areas == {36, 64, 4, 0}


def test_prob_chooses_the_images():
    probs = square_probs().repeat(8, 1, 1, 1)
    torch.testing.assert_close(perturb_boundaries(probs, 2, prob=0.0), probs)
    out = perturb_boundaries(probs, 2, prob=1.0)
    assert all(not torch.equal(out[i], probs[i]) for i in range(8))
    assert not out.requires_grad and out.data_ptr() != probs.data_ptr()


@pytest.mark.parametrize('grow_prob,areas', [(1.0, {36, 64}), (0.0, {4, 0})])
def test_grow_prob_sets_the_direction(grow_prob, areas):
    probs = square_probs()
    object_areas = set()
    for seed in range(20):
        torch.manual_seed(seed)
        out = perturb_boundaries(probs, max_radius=2, grow_prob=grow_prob)
        object_areas.add(int((out.argmax(1) == 1).sum()))
    assert object_areas == areas


@pytest.mark.parametrize('kwargs', [dict(max_radius=0),
                                    dict(max_radius=2, prob=1.5),
                                    dict(max_radius=2, grow_prob=-0.1)])
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError, match='max_radius|prob'):
        perturb_boundaries(square_probs(), **kwargs)
