"""Make the verified stack (torch 2.14, mmcv-lite, mmseg 1.2.2) work together.

Imported first by :mod:`iaffinity_plugins`, before anything imports mmseg.

* ``mmcv.ops`` (imported by mmseg) loads the compiled ``mmcv._ext``, which
  mmcv-lite does not ship. When the real extension is missing we install a stub
  module whose every attribute is a function raising :class:`MissingMMCVOpError`
  naming the compiled op, so mmseg imports and only a real call into a compiled
  op fails, clearly.
* mmengine's torchrun launcher calls ``torch.cuda.set_device`` even on
  machines without a GPU; there we initialise the process group with gloo
  directly, so ``--launcher pytorch`` also runs on CPU.
* torch >= 2.6 loads checkpoints with ``weights_only=True``. mmengine checkpoints
  hold a few plain classes (its ``ConfigDict``, numpy scalars and dtypes) that
  we allow-list with :func:`torch.serialization.add_safe_globals`. We never turn
  ``weights_only`` off.
"""
import importlib.machinery
import importlib.util
import pickle
import sys
import types
from typing import Callable, NoReturn

import numpy as np
import torch

EXT_NAME = 'mmcv._ext'


class MissingMMCVOpError(RuntimeError):
    """A compiled mmcv op was called, but only mmcv-lite is installed."""


class _MissingExtModule(types.ModuleType):
    """Stand-in for ``mmcv._ext``: any attribute is an op that raises."""

    def __getattr__(self, op_name: str) -> Callable[..., NoReturn]:
        if op_name.startswith('__'):
            raise AttributeError(op_name)

        def missing_op(*args, **kwargs) -> NoReturn:
            raise MissingMMCVOpError(
                f'mmcv compiled op {op_name!r} is not available: mmcv-lite is '
                'installed without the compiled extension mmcv._ext. Use a '
                'model without this op, or install a full mmcv build.')

        missing_op.__name__ = op_name
        return missing_op


def install_mmcv_ext_stub() -> bool:
    """Install the ``mmcv._ext`` stub when the real extension is missing.

    Returns:
        bool: True when the stub was installed, False when a real extension
        (or an earlier stub) is already importable.
    """
    if EXT_NAME in sys.modules:
        return False
    if importlib.util.find_spec('mmcv') is None:
        raise ImportError('mmcv (mmcv-lite==2.1.0) is required by iaffinity')
    if importlib.util.find_spec(EXT_NAME) is not None:
        return False
    stub = _MissingExtModule(EXT_NAME)
    # A real spec lets importlib, pkgutil and mmcv's own checks treat the
    # stub as an ordinary loaded module.
    stub.__spec__ = importlib.machinery.ModuleSpec(EXT_NAME, loader=None)
    stub.__file__ = None
    sys.modules[EXT_NAME] = stub
    return True


def _history_buffer_statistic(owner: type, name: str) -> Callable:
    """A ``getattr`` restricted to what mmengine checkpoints pickle.

    mmengine's message hub pickles ``HistoryBuffer`` statistics methods as
    ``getattr(HistoryBuffer, 'mean')``. Allow-listing the builtin ``getattr``
    would let a checkpoint reach any attribute of any allowed object, so the
    unpickler's ``builtins.getattr`` is mapped to this function instead.
    """
    from mmengine.logging import HistoryBuffer
    if owner is not HistoryBuffer or name not in HISTORY_BUFFER_STATISTICS:
        raise pickle.UnpicklingError(
            f'checkpoint asks for getattr({owner!r}, {name!r}), which is not '
            'allowed with weights_only=True')
    return getattr(owner, name)


HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')


def safe_checkpoint_globals() -> list:
    """Classes that mmengine checkpoints hold besides tensors and builtins."""
    from mmengine.config import ConfigDict
    from mmengine.logging import HistoryBuffer

    numpy_dtypes = [type(np.dtype(name)) for name in (
        'bool', 'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16',
        'uint32', 'uint64', 'float16', 'float32', 'float64')]
    return [
        ConfigDict, HistoryBuffer, np.dtype, np.ndarray,
        np._core.multiarray.scalar, np._core.multiarray._reconstruct,
        *numpy_dtypes, (_history_buffer_statistic, 'builtins.getattr')
    ]


def allow_mmengine_checkpoints() -> None:
    """Allow-list mmengine's checkpoint content for ``weights_only`` loads."""
    torch.serialization.add_safe_globals(safe_checkpoint_globals())


def allow_cpu_distributed() -> None:
    """Let mmengine's ``pytorch`` launcher start gloo groups without CUDA."""
    import mmengine.dist.utils as dist_utils
    init_with_cuda = dist_utils._init_dist_pytorch
    if getattr(init_with_cuda, 'iaffinity_patched', False):
        return

    def init_dist_pytorch(backend: str, init_backend: str = 'torch',
                          **kwargs) -> None:
        if torch.cuda.is_available():
            init_with_cuda(backend, init_backend=init_backend, **kwargs)
        else:
            torch.distributed.init_process_group(backend='gloo', **kwargs)

    init_dist_pytorch.iaffinity_patched = True
    dist_utils._init_dist_pytorch = init_dist_pytorch


install_mmcv_ext_stub()
allow_mmengine_checkpoints()
allow_cpu_distributed()
