"""Compare EM runs (ablations) from their ``report.json`` files.

    python tools/compare_runs.py WORK_DIR [WORK_DIR ...] [--out DIR]
        [--names NAME ...] [--full-reference WORK_DIR]

Writes ``comparison.md`` (runs x steps: unary / refined / mined mIoU, mined
precision, labelled fraction, energies, final val mIoU and, with
``--full-reference``, the weak/full ratio) and ``comparison_miou.png`` in
``--out`` and prints the markdown. See ``docs/ablations.md``.
"""
import argparse
from typing import List, Optional

from iaffinity_plugins.engine.compare import compare_runs


def main(argv: Optional[List[str]] = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('work_dirs', nargs='+',
                        help='run work dirs holding report.json')
    parser.add_argument('--out', default='work_dirs/comparison',
                        help='output folder (default: %(default)s)')
    parser.add_argument('--names', nargs='+',
                        help='row label per work dir (default: folder names)')
    parser.add_argument('--full-reference',
                        help='work dir of the fully supervised reference run '
                        '(configs/iaffinity/ablations/fully_supervised_*.py)')
    args = parser.parse_args(argv)
    markdown = compare_runs(args.work_dirs, args.out, args.names,
                            args.full_reference)
    print(markdown)
    return markdown


if __name__ == '__main__':
    main()
