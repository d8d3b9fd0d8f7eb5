"""Data sets generated on first use (the synthetic and the photo demo sets).

:func:`generate_once` writes a set into a temp folder beside its target and
renames it into place, so concurrent callers (two ranks, two data loaders)
never see a partial folder; :func:`ensure_generated` generates a missing set
and checks that an existing one was made with the arguments asked for (the
generator's arguments are stored in the set as JSON).
"""
import errno
import inspect
import json
import os
import os.path as osp
import shutil
import tempfile
from typing import Callable, Dict, Optional

from iaffinity_plugins.labels.label_io import atomic_write_bytes


def generate_once(out_dir: str, write: Callable[[str, dict], None],
                  params: dict, params_file: str) -> str:
    """Run ``write(folder, params)`` into a new ``out_dir``, atomically.

    Exactly one of several concurrent callers' renames wins; the others get
    :class:`FileExistsError`. ``params`` is stored as ``params_file``.

    Raises:
        FileExistsError: ``out_dir`` exists.
    """
    if osp.exists(out_dir):
        raise FileExistsError(f'{out_dir} already exists')
    parent = osp.dirname(osp.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    tmp_dir = tempfile.mkdtemp(prefix=f'.{osp.basename(out_dir)}.', dir=parent)
    try:
        write(tmp_dir, params)
        atomic_write_bytes(
            osp.join(tmp_dir, params_file),
            json.dumps(params, indent=2, sort_keys=True).encode())
        os.chmod(tmp_dir, 0o755)  # mkdtemp makes it owner-only
        os.rename(tmp_dir, out_dir)
    except OSError as error:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        if error.errno in (errno.EEXIST, errno.ENOTEMPTY):
            raise FileExistsError(f'{out_dir} already exists') from error
        raise
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    return out_dir


def ensure_generated(data_root: str, make: Callable[..., str],
                     generator_cfg: Optional[Dict], params_file: str) -> None:
    """Generate ``data_root`` with ``make`` if missing; else check it.

    Args:
        make: The generator, ``make(out_dir, **generator_cfg)``; its
            keyword defaults complete ``generator_cfg`` for the check.
        generator_cfg (dict, optional): The arguments asked for; None or
            empty accepts any existing folder.
        params_file (str): The JSON file in which ``make`` stores them.

    Raises:
        ValueError: ``data_root`` was generated with other arguments (naming
            its ``params_file``).
    """
    generator_cfg = dict(generator_cfg or {})
    if not osp.exists(data_root):
        try:
            make(data_root, **generator_cfg)
        except FileExistsError:
            pass  # another process generated it first: read theirs
    params_path = osp.join(data_root, params_file)
    if not generator_cfg or not osp.isfile(params_path):
        return
    defaults = {
        name: p.default
        for name, p in inspect.signature(make).parameters.items()
        if name != 'out_dir'
    }
    with open(params_path) as f:
        stored = json.load(f)
    requested = {**defaults, **generator_cfg}
    if stored != requested:
        raise ValueError(
            f'{params_path}: {data_root} was generated with {stored}, but '
            f'generator_cfg asks for {requested}; delete the folder or '
            'change data_root')
