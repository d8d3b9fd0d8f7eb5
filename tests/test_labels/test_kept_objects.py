"""Y_{t+1} keeps the objects of Y_t where it has background or unknown."""
import numpy as np
import pytest

from iaffinity_plugins.labels.kept_objects import (keep_previous_objects,
                                                   keep_previous_objects_from)
from iaffinity_plugins.labels.label_io import write_label


def test_objects_of_the_previous_map_fill_background_and_unknown():
    labels = np.array([[0, 255, 2, 0],
                       [1, 0, 255, 255]], dtype=np.uint8)
    previous = np.array([[1, 1, 1, 0],
                         [2, 255, 0, 255]], dtype=np.uint8)
    kept = keep_previous_objects(labels, previous)
    # previous objects over background and unknown; the new map's own
    # object class wins over the previous one; previous background and
    # unknown change nothing
    assert kept.tolist() == [[1, 1, 2, 0],
                             [1, 0, 255, 255]]
    assert labels[0, 0] == 0  # the input is left as it was


def test_a_previous_map_of_another_size_or_missing_is_named(tmp_path):
    labels = np.zeros((2, 2), np.uint8)
    write_label(str(tmp_path / 'a.png'), np.ones((3, 2), np.uint8))
    with pytest.raises(ValueError, match=r'a\.png.*differ in size'):
        keep_previous_objects_from(labels, str(tmp_path), 'a', 4)
    with pytest.raises(FileNotFoundError, match=r'b\.png'):
        keep_previous_objects_from(labels, str(tmp_path), 'b', 4)
    write_label(str(tmp_path / 'c.png'), np.full((2, 2), 3, np.uint8))
    assert (keep_previous_objects_from(labels, str(tmp_path), 'c', 4)
            == 3).all()
    # class 3 in a data set of 3 classes (0-2) is no class
    with pytest.raises(ValueError, match=r'c\.png'):
        keep_previous_objects_from(labels, str(tmp_path), 'c', 3)
