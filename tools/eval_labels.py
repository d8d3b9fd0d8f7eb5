"""Evaluate a pseudo-label folder against a data set's ground truth.

``python tools/eval_labels.py LABEL_DIR --dataset-config CONFIG
[--split-key train_dataloader] [--out-json F] [--out-md F]``

Prints a per-class IoU / precision table, the summary (mIoU over all
pixels, precision on labelled pixels, labelled fraction; paper Table 5) and
where the pixels go (background spread into by objects, objects missed or
given the wrong class, unknown).
"""
import argparse
import json
from typing import List, Optional

import iaffinity_plugins  # noqa: F401  (before mmseg: compat + registration)
from mmengine.config import Config
from mmengine.registry import init_default_scope

from iaffinity_plugins.evaluation.label_metrics import (evaluate_label_dir,
                                                        format_markdown,
                                                        to_json_safe)
from iaffinity_plugins.labels.label_io import atomic_write_bytes
from iaffinity_plugins.registry import DATASETS


def main(argv: Optional[List[str]] = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('label_dir', help='folder of <img_id>.png labels')
    parser.add_argument('--dataset-config', required=True,
                        help='config whose dataloader holds the data set')
    parser.add_argument('--split-key', default='train_dataloader',
                        help='which dataloader of the config to evaluate on')
    parser.add_argument('--out-json', help='write the numbers as JSON')
    parser.add_argument('--out-md', help='write the tables as markdown')
    args = parser.parse_args(argv)
    cfg = Config.fromfile(args.dataset_config)
    if args.split_key not in cfg:
        raise KeyError(f'{args.dataset_config} has no {args.split_key!r}')
    # Pipelines name mmseg's and our transforms without a scope prefix.
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    dataset = DATASETS.build(cfg[args.split_key]['dataset'])
    result = evaluate_label_dir(args.label_dir, dataset, progress=True)
    markdown = format_markdown(result)
    print(markdown)
    print(f"\n{result['images']} images evaluated, {result['skipped_no_gt']} "
          f"without ground truth skipped, {result['extra_files']} extra "
          'label files ignored')
    if args.out_json:
        atomic_write_bytes(args.out_json, json.dumps(
            to_json_safe(result), indent=2).encode())
    if args.out_md:
        atomic_write_bytes(args.out_md, (markdown + '\n').encode())
    return result


if __name__ == '__main__':
    main()
