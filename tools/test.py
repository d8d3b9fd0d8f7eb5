"""Evaluate a checkpoint: ``python tools/test.py CONFIG CHECKPOINT``."""
from iaffinity_plugins.cli import test

if __name__ == '__main__':
    test()
