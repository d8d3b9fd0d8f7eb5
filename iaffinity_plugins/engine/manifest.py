"""``manifest.json``: which stages of an EM run finished, with what config.

A stage is recorded as done only after all its outputs were written, so a
killed run restarts at the first unfinished stage. Each record keeps a hash of
the stage's config and inputs: a finished stage whose config changed is
reported (:class:`StageConfigChanged`) instead of mixing old outputs with a
new config.
"""
import hashlib
import json
import os.path as osp
from typing import Any, Dict, Optional

from ..labels.label_io import atomic_write_bytes


class StageConfigChanged(RuntimeError):
    """A finished stage would now run with a different config."""


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
                    self.stages = json.load(file)['stages']
            except (json.JSONDecodeError, KeyError, TypeError) as error:
                raise RuntimeError(
                    f'{path} is not a valid iaffinity manifest ({error}); '
                    'move it away to start this work dir afresh') from error

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
        text = json.dumps(dict(version=1, stages=self.stages), indent=2)
        atomic_write_bytes(self.path, text.encode())
