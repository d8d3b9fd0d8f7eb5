"""cls_labels.npy is read without running code: genuine PSA/IRN files
round-trip, a crafted pickle is refused before it calls anything."""
import builtins
import os
import pickle

import numpy as np
import pytest
from numpy.lib import format as npy_format

from iaffinity_plugins.datasets.tag_files import (UnsafePickleError,
                                                  read_pickled_dict)
from iaffinity_plugins.datasets.voc import read_cls_labels


def psa_irn_table() -> dict:
    """Keys as PSA (str), IRN (np.int32 from np.loadtxt) and plain int;
    float32 and uint8 values."""
    tags = np.zeros(20, np.float32)
    tags[[0, 14]] = 1
    return {'2007_000032': tags, np.int32(2007000039): tags.astype(np.uint8),
            2011003276: np.ones(20, np.float32)}


def write_npy_pickle(path, obj, protocol: int = 3,
                     legacy_numpy_names: bool = False) -> None:
    """What np.save writes for a 0-d object array: a .npy header, then
    ``obj`` pickled. ``legacy_numpy_names`` writes numpy 1's module names
    (numpy.core), as in the PSA/IRN releases."""
    data = pickle.dumps(obj, protocol=protocol)
    if legacy_numpy_names:
        assert protocol <= 3  # GLOBAL opcodes: names as plain text
        data = data.replace(b'numpy._core.multiarray',
                            b'numpy.core.multiarray')
    with open(path, 'wb') as file:
        npy_format.write_array_header_1_0(
            file, dict(descr='|O', fortran_order=False, shape=()))
        file.write(data)


def assert_same_table(read: dict, expected: dict) -> None:
    assert list(read) == list(expected)
    for key, value in expected.items():
        assert read[key].dtype == value.dtype
        np.testing.assert_array_equal(read[key], value)


def test_np_save_of_a_tag_dict_round_trips(tmp_path):
    path = str(tmp_path / 'cls_labels.npy')
    np.save(path, psa_irn_table())
    table = read_pickled_dict(path)
    assert_same_table(table, psa_irn_table())
    assert type(list(table)[1]) is np.int32
    tags = read_cls_labels(path, 20)
    assert sorted(tags) == ['2007_000032', '2007_000039', '2011_003276']
    assert tags['2007_000039'].dtype == np.float32


@pytest.mark.parametrize('protocol', [2, 3])
def test_numpy_1_files_of_either_pickle_protocol(tmp_path, protocol):
    """numpy 1 names numpy.core; pickle protocol 2 (older np.save) stores
    array bytes through _codecs.encode."""
    path = str(tmp_path / 'cls_labels.npy')
    write_npy_pickle(path, np.array(psa_irn_table()), protocol,
                     legacy_numpy_names=True)
    assert_same_table(read_pickled_dict(path), psa_irn_table())


class Payload:
    """Pickles as a call of ``function(*args)``."""

    def __init__(self, function, *args) -> None:
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


def payloads(marker: str) -> dict:
    """Pickled objects that would create ``marker`` when loaded."""
    return dict(
        system=Payload(os.system, f'touch {marker}'),
        open=Payload(builtins.open, marker, 'w'),
        # hidden as a tag vector inside a genuine-looking table
        nested=np.array({'2007_000032': Payload(os.system,
                                                f'touch {marker}')}),
        encode_with_another_codec=Payload(
            __import__('_codecs').encode, 'text', 'rot13'))


@pytest.mark.parametrize('payload', ['system', 'open', 'nested',
                                     'encode_with_another_codec'])
def test_crafted_pickle_is_refused_and_never_runs(tmp_path, payload):
    marker = tmp_path / 'marker'
    path = str(tmp_path / 'cls_labels.npy')
    write_npy_pickle(path, payloads(str(marker))[payload], protocol=2)
    with pytest.raises(UnsafePickleError, match='cls_labels.npy'):
        read_cls_labels(path, 20)
    assert not marker.exists()


def test_files_that_are_not_a_pickled_dict(tmp_path):
    numeric = str(tmp_path / 'numeric.npy')
    np.save(numeric, np.zeros((3, 20), np.float32))
    with pytest.raises(ValueError, match=r'numeric\.npy holds a \(3, 20\)'):
        read_pickled_dict(numeric)
    listed = str(tmp_path / 'listed.npy')
    np.save(listed, np.array(['a', 1], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=r'listed\.npy holds a \(2,\)'):
        read_pickled_dict(listed)
    text = tmp_path / 'text.npy'
    text.write_text('2007_000032 cat')
    with pytest.raises(ValueError, match=r'text\.npy is not a \.npy file'):
        read_pickled_dict(str(text))
