"""``IterativeAffinityLoop``: Algorithm 1 of the paper as an mmengine loop.

Stage order (each stage is skipped when ``manifest.json`` records it done)::

    seeds/cam        train the CAM classifier on image tags
    seeds/labels     Y_0 = seeds from multi-scale CAMs      -> step_0/seeds
    for t in 0 .. num_steps-1, on labels Y_t:
      step_t/unary       train the unary net f_t on Y_t
      step_t/pairwise    train the pairwise net g_t on Y_t (skipped when
                         ``pairwise=None``: the "no pairwise" ablation)
      step_t/refine      alpha_p = G alpha_u (E-step)      -> step_t/refined
      step_t/confidence  train the region classifier on the refined labels
      step_t/mine        Y_{t+1} = confident regions       -> step_{t+1}/labels
      step_t/evaluate    Table-5 metrics and Table-7 energies of the step
    final/unary      train the unary net on Y_T; evaluated by the val loop

Hooks receive ``after_em_stage(stage=...)`` and ``after_em_step(step=...,
record=...)`` / ``after_em_run(records=...)`` (custom hook stages, which
mmengine's ``call_hook`` supports).

The console gets one line per stage (what it trains or writes, and how
much), the stage's progress bar and, after each step, its Table-5 row
(:func:`~.console.announce`); every network's full training log goes to its
stage folder.
"""
import copy
import os.path as osp
from functools import cached_property
from typing import Dict, List, Optional

import torch
from mmengine.dist import barrier, is_main_process
from mmengine.model import is_model_wrapper
from mmengine.runner import BaseLoop

from ..evaluation.energy import propagation_energy
from ..evaluation.label_metrics import evaluate_label_dir
from ..labels.label_io import read_label
from ..labels.mining import mine_labels
from ..labels.refinement import write_refined_labels
from ..labels.seeds import write_seeds
from ..labels.superpixels import SuperpixelCache
from ..registry import LOOPS, MODELS
from .checkpoint import load_checkpoint_strict
from .console import announce
from .manifest import Manifest, config_hash
from .report import build_report, step_summary
from .stage_runner import set_transform_options, stage_pipeline, train_stage

MINING_MODES = ('confidence', 'majority', 'none')
UNARY_LABELS = ('mined', 'refined')


@LOOPS.register_module()
class IterativeAffinityLoop(BaseLoop):
    """Run seeds -> (unary -> pairwise -> refine -> mine) x T -> final unary.

    Args:
        runner (Runner): The outer runner; its ``model`` is the unary net
            that the final stage's weights are loaded into for evaluation.
        dataloader (DataLoader or dict): Training images with tags (an
            inference pipeline: no labels needed); labels are written for
            each of its images.
        num_steps (int): EM steps T (the paper plateaus after 5).
        cam (dict): Runner sub-config of the CAM classifier.
        unary (dict): Runner sub-config of the unary net (any mmseg
            segmentor as ``model``).
        pairwise (dict, optional): Runner sub-config of the pairwise net
            (``SPNRefiner``; its ``model.unary`` is filled in). None skips
            the pairwise net.
        confidence (dict, optional): Runner sub-config of the region
            classifier; required when ``mining['mode'] == 'confidence'``.
        seeds (dict): Seed rule (``type`` + thresholds) and CAM inference
            options (``scales``, ``flip``).
        superpixels (dict): Superpixel ``method`` and its parameters.
        mining (dict): ``mode`` (one of :data:`MINING_MODES`), ``ratio``,
            ``threshold``.
        unary_labels (str): What the unary net trains on after step 0:
            ``'mined'`` Y_t, or ``'refined'`` the previous refined labels
            (see :meth:`unary_labels_dir`).
        final_unary (dict, optional): Overrides merged into ``unary`` for the
            final training (e.g. more iterations).
        train_final (bool): Train the final unary net on Y_T (and evaluate
            it with the runner's val loop, when it has one).
        energy_samples (int): Images (fixed: the first by image id) on which
            the Table-7 energies are averaged.
    """

    def __init__(self, runner, dataloader, num_steps: int, cam: dict,
                 unary: dict, pairwise: Optional[dict] = None,
                 confidence: Optional[dict] = None,
                 seeds: Optional[dict] = None,
                 superpixels: Optional[dict] = None,
                 mining: Optional[dict] = None,
                 unary_labels: str = 'mined',
                 final_unary: Optional[dict] = None,
                 train_final: bool = True,
                 energy_samples: int = 100) -> None:
        super().__init__(runner, dataloader)
        mining = {**dict(mode='confidence', ratio=0.8, threshold=0.7),
                  **(mining or {})}
        if mining['mode'] not in MINING_MODES:
            raise ValueError(f"train_cfg.mining.mode must be one of "
                             f"{MINING_MODES}, got {mining['mode']!r}")
        if mining['mode'] == 'confidence' and confidence is None:
            raise ValueError("train_cfg.confidence is required when "
                             "train_cfg.mining.mode == 'confidence'")
        if unary_labels not in UNARY_LABELS:
            raise ValueError(f'train_cfg.unary_labels must be one of '
                             f'{UNARY_LABELS}, got {unary_labels!r}')
        if num_steps < 0:
            raise ValueError(f'train_cfg.num_steps must be >= 0, got '
                             f'{num_steps}')
        self.num_steps = num_steps
        self.stage_cfgs = dict(cam=cam, unary=unary, pairwise=pairwise,
                               confidence=confidence)
        self.final_unary = final_unary or {}
        self.train_final = train_final
        self.seeds = {'type': 'threshold', **(seeds or {})}
        self.superpixels = {'method': 'felzenszwalb', **(superpixels or {})}
        self.mining = mining
        self.unary_labels = unary_labels
        self.energy_samples = energy_samples
        self.work_dir = runner.work_dir
        self.manifest = Manifest(osp.join(self.work_dir, 'manifest.json'),
                                 writable=is_main_process())
        self.records: List[dict] = []
        self._iter = 0
        # Each stage's hash includes the previous one's, so a change
        # upstream is detected at every finished stage after it.
        self._previous_hash = ''


    # mmengine's Runner and hooks read ``iter``/``max_iters`` of the train
    # loop: here one "iteration" is one stage.
    @property
    def iter(self) -> int:
        return self._iter

    @property
    def max_iters(self) -> int:
        return len(self.stage_names())

    @property
    def epoch(self) -> int:
        return 0

    @property
    def max_epochs(self) -> int:
        return 1

    @property
    def dataset(self):
        return self.dataloader.dataset

    def stage_names(self) -> List[str]:
        """Every stage of the run, in order."""
        names = ['seeds/cam', 'seeds/labels']
        for step in range(self.num_steps):
            names += [f'step_{step}/{stage}' for stage in (
                'unary', 'pairwise', 'refine', 'confidence', 'mine',
                'evaluate')]
        if self.train_final:
            names.append('final/unary')
        return names

    def unary_labels_dir(self, step: int) -> str:
        """The labels the unary net of ``step`` trains on.

        ``unary_labels='mined'``: Y_step, like the pairwise net.
        ``unary_labels='refined'`` (Algorithm 1 of the paper: f_{t+1} is
        trained on alpha_t^p): the refined labels of the previous step, dense
        where the mined ones leave much unknown; the seeds at step 0.
        """
        if self.unary_labels == 'mined' or step == 0:
            return self.labels_dir(step)
        return osp.join(self.work_dir, f'step_{step - 1}', 'refined')

    def labels_dir(self, step: int) -> str:
        """The label folder Y_step (seeds for step 0)."""
        name = 'seeds' if step == 0 else 'labels'
        return osp.join(self.work_dir, f'step_{step}', name)

    def run(self) -> torch.nn.Module:
        self.runner.call_hook('before_train')
        self._run_stage('seeds/cam', self.stage_cfgs['cam'], self._train_cam,
                        self._training('the CAM classifier on image tags',
                                       self.stage_cfgs['cam']))
        self._run_stage('seeds/labels', self.seeds, self._write_seeds,
                        self._writing('the seeds Y_0', self.labels_dir(0)))
        final = None
        for step in range(self.num_steps):
            self._run_step(step)
        if self.train_final:
            final_cfg = copy.deepcopy(self.stage_cfgs['unary'])
            final_cfg.update(copy.deepcopy(self.final_unary))
            weights = self._run_stage(
                'final/unary', final_cfg,
                lambda: dict(weights=train_stage(
                    final_cfg, self.runner.cfg,
                    osp.join(self.work_dir, 'final', 'unary'),
                    'final/unary', self.unary_labels_dir(self.num_steps))),
                self._training('the final unary net', final_cfg,
                               self.unary_labels_dir(self.num_steps)))
            model = self.runner.model
            load_checkpoint_strict(
                model.module if is_model_wrapper(model) else model,
                weights['weights'])
            if self.runner.val_loop is not None:
                final = self.runner.val_loop.run()
        self.runner.call_hook('after_em_run', records=self.records,
                              final=final)
        self.runner.call_hook('after_train')
        return self.runner.model

    def _run_step(self, step: int) -> None:
        """One EM step on labels Y_step."""
        prefix = osp.join(self.work_dir, f'step_{step}')
        labels = self.labels_dir(step)
        unary_labels = self.unary_labels_dir(step)
        unary = self._run_stage(
            f'step_{step}/unary', [self.stage_cfgs['unary'], unary_labels],
            lambda: dict(weights=train_stage(
                self.stage_cfgs['unary'], self.runner.cfg,
                osp.join(prefix, 'unary'), f'step_{step}/unary',
                unary_labels)),
            self._training(f'the unary net f_{step}', self.stage_cfgs['unary'],
                           unary_labels))
        pairwise_cfg = self._pairwise_cfg(unary['weights'])
        pairwise = self._run_stage(
            f'step_{step}/pairwise', [pairwise_cfg, labels],
            lambda: dict(weights=None if pairwise_cfg is None else
                         train_stage(pairwise_cfg, self.runner.cfg,
                                     osp.join(prefix, 'pairwise'),
                                     f'step_{step}/pairwise', labels)),
            'no pairwise net (pairwise=None)' if pairwise_cfg is None else
            self._training(f'the pairwise net g_{step}', pairwise_cfg, labels))
        self._run_stage(
            f'step_{step}/refine', [unary, pairwise],
            lambda: self._refine(unary['weights'], pairwise_cfg,
                                 pairwise['weights'], prefix),
            self._writing('the unary and refined labels',
                          osp.join(prefix, 'refined')))
        refined = osp.join(prefix, 'refined')
        use_confidence = self.mining['mode'] == 'confidence'
        confidence = self._run_stage(
            f'step_{step}/confidence',
            [self.stage_cfgs['confidence'] if use_confidence else None,
             self.superpixels, refined],
            lambda: dict(weights=self._train_confidence(step, refined)
                         if use_confidence else None),
            self._training('the region classifier',
                           self.stage_cfgs['confidence'], refined)
            if use_confidence else f"no region classifier (mining mode "
            f"{self.mining['mode']!r})")
        self._run_stage(
            f'step_{step}/mine', [self.mining, confidence],
            lambda: self._mine(confidence['weights'], refined,
                               self.labels_dir(step + 1)),
            self._writing(f"mined labels Y_{step + 1} (mode "
                          f"{self.mining['mode']!r})",
                          self.labels_dir(step + 1)))
        record = self._run_stage(
            f'step_{step}/evaluate', [self.energy_samples],
            lambda: self._evaluate_step(step, pairwise_cfg,
                                        pairwise['weights']),
            f'label quality of the step, energies on '
            f'{min(self.energy_samples, len(self.dataset))} images')
        self.records.append(record)
        report = build_report(self.records)
        announce(self.runner.logger, '[iaffinity] ' + step_summary(
            report['steps'][-1], report['seeds']))
        self.runner.call_hook('after_em_step', step=step, record=record)

    def _run_stage(self, name: str, stage_cfg, work, what: str) -> dict:
        """Run ``work()`` unless the manifest says ``name`` is done.

        Args:
            what (str): What the stage does, for its console line.

        Returns:
            dict: The stage's outputs (from the manifest when skipped).
        """
        stage_hash = config_hash(stage_cfg, self._previous_hash)
        self._previous_hash = stage_hash
        if self.manifest.is_done(name, stage_hash):
            announce(self.runner.logger,
                     f'[iaffinity] {name}: done, skipped ({what})')
            outputs = self.manifest.record(name)['outputs']
        else:
            announce(self.runner.logger, f'[iaffinity] {name}: {what}')
            self.manifest.mark_running(name, stage_hash)
            outputs = work() or {}
            # Every rank must have finished writing before rank 0 marks the
            # stage done: a killed run must never see half a stage as done.
            barrier()
            self.manifest.mark_done(name, stage_hash, outputs=outputs)
        self._iter += 1
        self.runner.call_hook('after_em_stage', stage=name, outputs=outputs)
        return outputs

    def _training(self, network: str, stage_cfg: dict,
                  label_dir: Optional[str] = None) -> str:
        """The console line of a training stage."""
        labels = '' if label_dir is None else \
            f' on {osp.relpath(label_dir, self.work_dir)}'
        batch = stage_cfg.get('batch_size') or stage_cfg.get(
            'train_dataloader', {}).get('batch_size', 8)
        iters = stage_cfg['train_cfg'].get('max_iters', '?')
        return (f'train {network}{labels}: {iters} iterations of '
                f'{batch} crops from {len(self.dataset)} images')

    def _writing(self, labels: str, out_dir: str) -> str:
        """The console line of a label-writing stage."""
        return (f'write {labels} for {len(self.dataset)} images -> '
                f'{osp.relpath(out_dir, self.work_dir)}')

    # ----------------------------------------------------------------- seeds
    def _train_cam(self) -> dict:
        return dict(weights=train_stage(
            self.stage_cfgs['cam'], self.runner.cfg,
            osp.join(self.work_dir, 'step_0', 'cam'), 'seeds/cam',
            label_dir=None))

    def _write_seeds(self) -> dict:
        cam_weights = self.manifest.record('seeds/cam')['outputs']['weights']
        model = self._load_model(self.stage_cfgs['cam']['model'],
                                 cam_weights)
        seed_cfg = {key: value for key, value in self.seeds.items()
                    if key not in ('scales', 'flip')}
        cam_options = {key: self.seeds[key] for key in ('scales', 'flip')
                       if key in self.seeds}
        summary = write_seeds(model, self.dataset, self.labels_dir(0),
                              seed_cfg, **cam_options)
        barrier()  # every rank's shard is written before it is evaluated
        return dict(summary=summary,
                    quality=self._label_quality(self.labels_dir(0)))

    @property
    def seeds_quality(self) -> Optional[dict]:
        """mIoU/precision/labelled fraction of Y_0, measured once when the
        seeds were written (None before that or without ground truth)."""
        record = self.manifest.record('seeds/labels')
        if record is None or record['state'] != 'done':
            return None
        if 'quality' not in record['outputs']:  # a manifest from before
            return self._label_quality(self.labels_dir(0))
        return record['outputs']['quality']

    # ------------------------------------------------------ pairwise / refine
    def _pairwise_cfg(self, unary_weights: str) -> Optional[dict]:
        """The pairwise runner config with the trained unary net filled in."""
        if self.stage_cfgs['pairwise'] is None:
            return None
        cfg = copy.deepcopy(self.stage_cfgs['pairwise'])
        cfg['model']['unary'] = copy.deepcopy(
            self.stage_cfgs['unary']['model'])
        cfg['model']['unary_checkpoint'] = unary_weights
        self._set_superpixels(cfg)
        return cfg

    def _refine(self, unary_weights: str, pairwise_cfg: Optional[dict],
                pairwise_weights: Optional[str], prefix: str) -> dict:
        unary = self._load_model(self.stage_cfgs['unary']['model'],
                                 unary_weights)
        refiner = None if pairwise_cfg is None else self._load_model(
            pairwise_cfg['model'], pairwise_weights)
        summary = write_refined_labels(unary, refiner, self.dataset,
                                       osp.join(prefix, 'refined'),
                                       osp.join(prefix, 'unary_labels'))
        return dict(summary=summary)

    # ---------------------------------------------------------------- mining
    def _superpixel_cache(self) -> SuperpixelCache:
        return SuperpixelCache(osp.join(self.work_dir, 'superpixels'),
                               **self.superpixels)

    def _set_superpixels(self, stage_cfg: dict) -> None:
        """Point the stage's ``LoadSuperpixels`` at the run's cache."""
        set_transform_options(stage_pipeline(stage_cfg), 'LoadSuperpixels',
                              cache_dir=osp.join(self.work_dir,
                                                 'superpixels'),
                              **self.superpixels)

    def _train_confidence(self, step: int, refined: str) -> str:
        cfg = copy.deepcopy(self.stage_cfgs['confidence'])
        self._set_superpixels(cfg)
        return train_stage(cfg, self.runner.cfg,
                           osp.join(self.work_dir, f'step_{step}',
                                    'confidence'),
                           f'step_{step}/confidence', refined)

    def _mine(self, confidence_weights: Optional[str], refined: str,
              out_dir: str) -> dict:
        model = None if confidence_weights is None else self._load_model(
            self.stage_cfgs['confidence']['model'], confidence_weights)
        summary = mine_labels(model, self.dataset, refined, out_dir,
                              self._superpixel_cache(),
                              ratio=self.mining['ratio'],
                              threshold=self.mining['threshold'],
                              mode=self.mining['mode'])
        if summary['empty_images']:
            self.runner.logger.warning(
                f"[iaffinity] mining left {len(summary['empty_images'])} "
                f'images without any confident region in {out_dir}, e.g. '
                f"{summary['empty_images'][:3]}")
        return dict(summary=summary)

    # ------------------------------------------------------------ evaluation
    def _evaluate_step(self, step: int, pairwise_cfg: Optional[dict],
                       pairwise_weights: Optional[str]) -> dict:
        """Table-5 metrics of the step's label maps, Table-7 energies."""
        prefix = osp.join(self.work_dir, f'step_{step}')
        quality = dict(seeds=self.seeds_quality, **{
            name: self._label_quality(path) for name, path in (
                ('unary', osp.join(prefix, 'unary_labels')),
                ('refined', osp.join(prefix, 'refined')),
                ('mined', self.labels_dir(step + 1)))
        })
        energies = dict(energy_refined=None, energy_mined=None)
        if pairwise_cfg is not None:
            refiner = self._load_model(pairwise_cfg['model'],
                                       pairwise_weights)
            energies = dict(
                energy_refined=self._mean_energy(
                    refiner, osp.join(prefix, 'refined')),
                energy_mined=self._mean_energy(refiner,
                                               self.labels_dir(step + 1)))
        return dict(step=step + 1, quality=quality, **energies)

    @cached_property
    def has_ground_truth(self) -> bool:
        """Whether any training image has a ground-truth mask."""
        return any(self.dataset.get_data_info(i).get('gt_seg_map_path')
                   for i in range(len(self.dataset)))

    def _label_quality(self, label_dir: str) -> Optional[dict]:
        """mIoU/precision/labelled fraction, None without ground truth."""
        if not self.has_ground_truth:
            return None
        return evaluate_label_dir(label_dir, self.dataset)

    @torch.no_grad()
    def _mean_energy(self, refiner, label_dir: str) -> float:
        """Mean J = <a, a - G a> over a fixed sample of training images."""
        num_classes = len(self.dataset.metainfo['classes'])
        order = sorted(range(len(self.dataset)),
                       key=lambda i: self.dataset.get_data_info(i)['img_id'])
        energies = []
        for index in order[:self.energy_samples]:
            item = self.dataset.prepare_data(index)
            img_id = self.dataset.get_data_info(index)['img_id']
            batch = refiner.data_preprocessor(
                dict(inputs=[item['inputs']],
                     data_samples=[item['data_samples']]), False)
            labels = torch.from_numpy(
                read_label(osp.join(label_dir, f'{img_id}.png'))).long()
            energies.append(propagation_energy(
                refiner, batch['inputs'], labels[None], num_classes))
        return float(torch.cat(energies).mean()) if energies else None

    # ----------------------------------------------------------------- utils
    def _load_model(self, model_cfg: dict,
                    weights: str) -> torch.nn.Module:
        """Build a model from its config and load a stage's final weights."""
        model = MODELS.build(copy.deepcopy(model_cfg))
        load_checkpoint_strict(model, weights)
        device = next(self.runner.model.parameters()).device
        return model.to(device).eval()
