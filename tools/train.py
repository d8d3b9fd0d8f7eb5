"""Train with a config: ``python tools/train.py CONFIG [options]``.

For iaffinity configs this runs the whole EM loop (Algorithm 1); see
``iaffinity_plugins/cli.py`` for the options.
"""
from iaffinity_plugins.cli import train

if __name__ == '__main__':
    train()
