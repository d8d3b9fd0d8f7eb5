"""``manifest.json``: which stages of an EM run finished, with what config.

A stage is recorded as done only after all its outputs were written, so a
killed run restarts at the first unfinished stage. Each record keeps a hash of
the stage's config and inputs: a finished stage whose config changed is
reported (:class:`StageConfigChanged`) instead of mixing old outputs with a
new config.

The file carries a format ``version``. Version 3 runs every step, step 0
included, in the order of Algorithm 1's M-step (the unary net f_t trains,
Y_t is mined from its output, g_t trains on Y_t). Version 2 trained g_0 on
the seeds and mined nothing at step 0; version 1 (or no version) had each
step refine, then train the region classifier and mine Y_{t+1}. An older
work dir that got past what all orders share (the seeds and f_0,
:data:`DIVERGED_STAGES`) is refused (:class:`OutdatedManifest`) rather than
continued in another order.
"""
import hashlib
import json
import os.path as osp
from typing import Any, Dict, Optional

from ..labels.label_io import atomic_write_bytes

VERSION = 3
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


class Manifest:
    """Stage states of one work dir, persisted atomically after each change.

    Args:
        path (str): Location of ``manifest.json``.
        writable (bool): Whether changes are written to ``path``; in a
            distributed run every rank keeps the records, rank 0 writes.
    """

    def __init__(self, path: str, writable: bool = True) -> None:
        self.path = path
        self.writable = writable
        self.stages: Dict[str, dict] = {}
        if osp.exists(path):
            try:
                with open(path) as file:
                    content = json.load(file)
                self.stages = content['stages']
                version = content.get('version', 1)
            except (json.JSONDecodeError, KeyError, TypeError) as error:
                raise RuntimeError(
                    f'{path} is not a valid iaffinity manifest ({error}); '
                    'move it away to start this work dir afresh') from error
            self._refuse_diverged_stages(version)

    def _refuse_diverged_stages(self, version: int) -> None:
        """Raise :class:`OutdatedManifest` when a manifest of an older
        version records stages run in its own order."""
        if version >= VERSION:
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

    def is_done(self, stage: str, stage_hash: str) -> bool:
        """Whether ``stage`` finished with the same config.

        Raises:
            StageConfigChanged: the stage finished with another config.
        """
        record = self.stages.get(stage)
        if record is None or record['state'] != 'done':
            return False
        if record['hash'] != stage_hash:
            raise StageConfigChanged(
                f'stage {stage!r} in {osp.dirname(self.path)} finished with '
                f'config hash {record["hash"]}, but the current config hashes '
                f'to {stage_hash}. Use a new --work-dir, or delete the stage '
                'and everything after it from the manifest to re-run it.')
        return True

    def record(self, stage: str) -> Optional[dict]:
        """The stored record of ``stage`` (None when never started)."""
        return self.stages.get(stage)

    def mark_running(self, stage: str, stage_hash: str) -> None:
        """Record that ``stage`` started (its outputs are not complete)."""
        self.stages[stage] = dict(state='running', hash=stage_hash)
        self.save()

    def mark_done(self, stage: str, stage_hash: str,
                  outputs: Optional[dict] = None,
                  metrics: Optional[dict] = None) -> None:
        """Record that ``stage`` finished, with its outputs and metrics."""
        self.stages[stage] = dict(state='done', hash=stage_hash,
                                  outputs=outputs or {},
                                  metrics=metrics or {})
        self.save()

    def save(self) -> None:
        """Write the manifest atomically (when writable)."""
        if not self.writable:
            return
        text = json.dumps(dict(version=VERSION, stages=self.stages),
                          indent=2)
        atomic_write_bytes(self.path, text.encode())
