"""Read PSA/IRN's ``cls_labels.npy`` without running any code from it.

The file is ``np.save`` of a dict {image id (str; IRN: int) -> (20,)
float32 or uint8 multi-hot}, i.e. a 0-d object array, which the ``.npy``
format stores as a pickle. ``np.load(allow_pickle=True)`` would call
whatever a crafted file's pickle names (``os.system``, ``builtins.open``,
...). Here the ``.npy`` header is read with :mod:`numpy.lib.format` and the
payload with :class:`TagFileUnpickler`, which admits only the globals such
a file names (:data:`ALLOWED_GLOBALS`) and refuses every other.
"""
import codecs
import pickle
from typing import Any, BinaryIO, Callable, Dict, NoReturn, Tuple

import numpy as np
from numpy.lib import format as npy_format


class UnsafePickleError(pickle.UnpicklingError):
    """A tag file's pickle names a global that a tag file never needs."""


# (module, name) -> the object it unpickles to. Listed with pickletools on
# np.save files of a dict of numpy arrays with str, int and numpy-integer
# keys: numpy 2 names numpy._core, numpy 1 numpy.core (PSA's and IRN's
# releases); numpy scalars (IRN's np.int32 ids) need ``scalar``. Pickle
# protocol 2 also names ``_codecs.encode`` (see
# :meth:`TagFileUnpickler.latin1_encode`).
ALLOWED_GLOBALS: Dict[Tuple[str, str], Callable] = {
    ('numpy', 'ndarray'): np.ndarray,
    ('numpy', 'dtype'): np.dtype,
    ('numpy._core.multiarray', '_reconstruct'):
    np._core.multiarray._reconstruct,
    ('numpy.core.multiarray', '_reconstruct'):
    np._core.multiarray._reconstruct,
    ('numpy._core.multiarray', 'scalar'): np._core.multiarray.scalar,
    ('numpy.core.multiarray', 'scalar'): np._core.multiarray.scalar,
}


class TagFileUnpickler(pickle.Unpickler):
    """An unpickler that resolves only :data:`ALLOWED_GLOBALS` and a
    latin1-only ``_codecs.encode``.

    Args:
        file (BinaryIO): The pickle stream.
        source (str): The file's path, for error messages.
    """

    def __init__(self, file: BinaryIO, source: str) -> None:
        # latin1 also reads the arrays of files pickled by Python 2.
        super().__init__(file, encoding='latin1')
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ('_codecs', 'encode'):
            return self.latin1_encode
        found = ALLOWED_GLOBALS.get((module, name))
        if found is None:
            self.refuse(f'{module}.{name}')
        return found

    def latin1_encode(self, text: str, encoding: str) -> bytes:
        """``_codecs.encode`` restricted to what pickle protocol 2 uses it
        for: an array's data bytes as ``encode(text, 'latin1')``."""
        if encoding not in ('latin1', 'latin-1'):
            self.refuse(f'_codecs.encode(..., {encoding!r})')
        return codecs.encode(text, encoding)

    def refuse(self, what: str) -> NoReturn:
        raise UnsafePickleError(
            f'{self.source}: refused to load {what}: a tag file holds only '
            'a dict of numpy arrays, and this pickle would call other code. '
            "Not loaded; regenerate the file from the dataset's annotations "
            'if it should be a tag file.')


def read_pickled_dict(path: str) -> Dict[Any, Any]:
    """The dict that ``np.save`` stored in ``path``, read without ever
    calling a global outside :data:`ALLOWED_GLOBALS`.

    Raises:
        UnsafePickleError: the pickle names any other global.
        ValueError: ``path`` is not an ``np.save`` file of one dict.
    """
    with open(path, 'rb') as file:
        try:
            version = npy_format.read_magic(file)
            read_header = {
                (1, 0): npy_format.read_array_header_1_0,
                (2, 0): npy_format.read_array_header_2_0
            }.get(version)
            if read_header is None:
                raise ValueError(f'.npy format version {version}')
            shape, _, dtype = read_header(file)
        except ValueError as error:
            raise ValueError(f'{path} is not a .npy file ({error})') from error
        if shape != () or not dtype.hasobject:
            raise ValueError(f'{path} holds a {shape} array of {dtype}, not '
                             'a pickled dict (np.save of a dict)')
        array = TagFileUnpickler(file, path).load()
    if not (isinstance(array, np.ndarray) and array.shape == ()
            and isinstance(array.item(), dict)):
        raise ValueError(f'{path} does not hold a dict (np.save of a dict)')
    return array.item()
