"""``manifest.json``: which stages of an EM run finished, with what config.

A stage is recorded as done only after all its outputs were written, so a
killed run restarts at the first unfinished stage. Each record keeps a hash of
the stage's config and inputs: a finished stage whose config changed is
reported (:class:`StageConfigChanged`) instead of mixing old outputs with a
new config.

A work dir can be moved or renamed: every path inside it, in the hashed
configs and in the recorded outputs, is written from :data:`WORK_DIR_TOKEN`
(:func:`relative_paths`), and the outputs are read back in the work dir's
current place (:meth:`Manifest.record`). Paths outside it (data, pretrained
weights) stay as they are.

The file carries a format ``version``. Version 4 hashes and stores the paths
inside the work dir relative to it; version 3 hashed their absolute form.
Since version 3 every step, step 0 included, runs in the order of Algorithm
1's M-step (the unary net f_t trains, Y_t is mined from its output, g_t
trains on Y_t). Version 2 trained g_0 on the seeds and mined nothing at step
0; version 1 (or no version) had each step refine, then train the region
classifier and mine Y_{t+1}. An older work dir that got past what all orders
share (the seeds and f_0, :data:`DIVERGED_STAGES`) is refused
(:class:`OutdatedManifest`) rather than continued in another order.

The records of an older version keep their hash as ``legacy_hash`` until
the loop reaches them: a record whose ``legacy_hash`` equals the current
config's hash by the old rule (nothing but the rule changed) gets the new
hash, else :class:`StageConfigChanged` is raised (:meth:`Manifest.is_done`).
"""
import hashlib
import json
import os
import os.path as osp
from typing import Any, Callable, Dict, Optional

from ..labels.label_io import atomic_write_bytes

VERSION = 4
# The first version of today's stage order.
ORDER_VERSION = 3
# Stands for the work dir in hashed configs and recorded outputs.
WORK_DIR_TOKEN = '{work_dir}'
# Stages that show an older run went past what every order shares (the
# seeds, then f_0): version 1 and 2 trained g_0 on the seeds (version 1
# then mined from the refined map, or, with num_steps=0, trained the final
# net right after the seeds).
DIVERGED_STAGES = ('step_0/pairwise', 'step_0/refine', 'step_0/confidence',
                   'step_0/mine', 'final/unary')


class StageConfigChanged(RuntimeError):
    """A finished stage would now run with a different config."""


class OutdatedManifest(RuntimeError):
    """A manifest records stages of an older stage order."""


def config_hash(*parts: Any) -> str:
    """A stable short hash of JSON-serialisable config parts."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _map_strings(value: Any, function: Callable[[str], str]) -> Any:
    """``value`` (strings in dicts, lists and tuples) with ``function``
    applied to each of its strings; tuples become lists, as in JSON."""
    if isinstance(value, str):
        return function(value)
    if isinstance(value, dict):
        return {key: _map_strings(item, function)
                for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_map_strings(item, function) for item in value]
    return value


def _rebase(path: str, root: str, new_root: str) -> str:
    """``path`` with its leading ``root`` replaced by ``new_root`` (``path``
    itself when it does not lie in ``root``)."""
    if path == root or path.startswith(root + os.sep):
        return new_root + path[len(root):]
    return path


def relative_paths(value: Any, work_dir: str) -> Any:
    """``value`` with each path inside ``work_dir`` written from
    :data:`WORK_DIR_TOKEN` (``/runs/a/step_0/seeds`` ->
    ``{work_dir}/step_0/seeds``); other strings unchanged."""
    return _map_strings(value,
                        lambda text: _rebase(text, work_dir, WORK_DIR_TOKEN))


def resolved_paths(value: Any, work_dir: str) -> Any:
    """``value`` with :data:`WORK_DIR_TOKEN` replaced by ``work_dir``: the
    inverse of :func:`relative_paths`."""
    return _map_strings(value,
                        lambda text: _rebase(text, WORK_DIR_TOKEN, work_dir))


class Manifest:
    """Stage states of one work dir, persisted atomically after each change.

    Args:
        path (str): Location of ``manifest.json``, in the work dir.
        writable (bool): Whether changes are written to ``path``; in a
            distributed run every rank keeps the records, rank 0 writes.
    """

    def __init__(self, path: str, writable: bool = True) -> None:
        self.path = path
        self.work_dir = osp.dirname(osp.abspath(path))
        self.writable = writable
        self.stages: Dict[str, dict] = {}
        if osp.exists(path):
            try:
                with open(path) as file:
                    content = json.load(file)
                self.stages = content['stages']
                version = content.get('version', 1)
                if version < VERSION:
                    # Hashed over absolute paths: checked by that rule,
                    # then given the new hash (is_done).
                    for record in self.stages.values():
                        record['legacy_hash'] = record.pop('hash')
            except (json.JSONDecodeError, KeyError, TypeError) as error:
                raise RuntimeError(
                    f'{path} is not a valid iaffinity manifest ({error}); '
                    'move it away to start this work dir afresh') from error
            self._refuse_diverged_stages(version)

    def _refuse_diverged_stages(self, version: int) -> None:
        """Raise :class:`OutdatedManifest` when a manifest of an older
        version records stages run in its own order."""
        if version >= ORDER_VERSION:
            return
        diverged = [stage for stage in DIVERGED_STAGES
                    if stage in self.stages]
        if diverged:
            raise OutdatedManifest(
                f'{self.path} was written by an older iaffinity (manifest '
                f'version {version}, stages {diverged}) in an older stage '
                'order. Every step, step 0 included, now trains the unary '
                'net, mines Y_t from its output and trains the pairwise net '
                'on Y_t, so these stages cannot be reused. Use a new '
                f'--work-dir (or move {self.path} away).')

    def stage_hash(self, stage_cfg: Any, previous_hash: str) -> str:
        """The hash of a stage's config and inputs, chained to the previous
        stage's, the same wherever the work dir lies."""
        return config_hash(relative_paths(stage_cfg, self.work_dir),
                           previous_hash)

    def is_done(self, stage: str, stage_hash: str,
                legacy_hash: Optional[str] = None) -> bool:
        """Whether ``stage`` finished with the same config.

        A record of an older manifest version is compared with
        ``legacy_hash`` (the hash by version 3's rule, over absolute paths,
        chained to the previous stage's legacy hash); when they match, it
        is given ``stage_hash`` and its outputs are stored relative to the
        work dir.

        Raises:
            StageConfigChanged: the stage finished with another config.
        """
        record = self.stages.get(stage)
        if record is None or record['state'] != 'done':
            return False
        if 'legacy_hash' in record:
            self._migrate(stage, stage_hash, legacy_hash)
        elif record['hash'] != stage_hash:
            raise StageConfigChanged(
                f'stage {stage!r} in {self.work_dir} finished with '
                f'config hash {record["hash"]}, but the current config hashes '
                f'to {stage_hash}. Use a new --work-dir, or delete the stage '
                'and everything after it from the manifest to re-run it.')
        return True

    def _migrate(self, stage: str, stage_hash: str,
                 legacy_hash: Optional[str]) -> None:
        """Give a record of an older version ``stage_hash`` when its hash
        is ``legacy_hash``, else raise :class:`StageConfigChanged`."""
        record = self.stages[stage]
        if record['legacy_hash'] != legacy_hash:
            # Version 3 hashed absolute paths: a moved work dir no longer
            # matches, and cannot be told from a changed config.
            raise StageConfigChanged(
                f'stage {stage!r} in {self.path} (written by an older '
                'iaffinity, whose config hashes depend on where the work '
                f'dir lies) finished with config hash '
                f'{record["legacy_hash"]}, but the current config in '
                f'{self.work_dir} hashes to {legacy_hash} by that rule. If '
                'the work dir was moved or renamed, move it back, resume it '
                'there once (this updates its manifest) and move it again; '
                'otherwise its config changed: use a new --work-dir, or '
                'delete the stage and everything after it from the '
                'manifest to re-run it.')
        self.mark_done(stage, stage_hash, outputs=record.get('outputs'),
                       metrics=record.get('metrics'))

    def record(self, stage: str) -> Optional[dict]:
        """The stored record of ``stage`` (None when never started), its
        paths in the work dir's current place."""
        record = self.stages.get(stage)
        return None if record is None else resolved_paths(record,
                                                          self.work_dir)

    def started_with(self, stage: str, stage_hash: str,
                     legacy_hash: Optional[str] = None) -> bool:
        """Whether ``stage`` has a record of this config (a killed stage
        resumes from what it wrote); a record of an older manifest version
        is compared with ``legacy_hash`` (see :meth:`is_done`)."""
        record = self.stages.get(stage)
        if record is None:
            return False
        if 'legacy_hash' in record:
            return record['legacy_hash'] == legacy_hash
        return record['hash'] == stage_hash

    def mark_running(self, stage: str, stage_hash: str) -> None:
        """Record that ``stage`` started (its outputs are not complete)."""
        self.stages[stage] = dict(state='running', hash=stage_hash)
        self.save()

    def mark_done(self, stage: str, stage_hash: str,
                  outputs: Optional[dict] = None,
                  metrics: Optional[dict] = None) -> None:
        """Record that ``stage`` finished, with its outputs and metrics
        (paths inside the work dir stored relative to it)."""
        self.stages[stage] = relative_paths(
            dict(state='done', hash=stage_hash, outputs=outputs or {},
                 metrics=metrics or {}), self.work_dir)
        self.save()

    def save(self) -> None:
        """Write the manifest atomically (when writable)."""
        if not self.writable:
            return
        text = json.dumps(dict(version=VERSION, stages=self.stages),
                          indent=2)
        atomic_write_bytes(self.path, text.encode())
