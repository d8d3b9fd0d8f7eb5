"""``IterativeAffinityLoop``: Algorithm 1 of the paper as an mmengine loop.

Stage order (each stage is skipped when ``manifest.json`` records it done)::

    seeds/cam            train the CAM classifier on image tags
    seeds/labels         the seeds (the paper's Y_0) from multi-scale CAMs
                         -> step_0/seeds
    for t in 0 .. num_steps, the M-step then the E-step:
      step_t/unary         train f_t on alpha_{t-1}^p (step_{t-1}/refined;
                           the seeds at t = 0)
      step_t/unary_labels  f_t's output alpha_t^u -> step_t/unary_labels
      step_t/confidence    train the region classifier on the regions the
                           80 % rule labels in f_t's output
      step_t/mine          Y_t = confident regions of f_t's output
                           -> step_t/labels
      step_t/pairwise      train g_t on Y_t (skipped when ``pairwise=None``:
                           the "no pairwise" ablation)
      step_t/refine        alpha_t^p = G_t alpha_t^u -> step_t/refined
                           (``superpixel_pooling``: averaged inside each
                           superpixel; ``refined_min_confidence``: unsure
                           pixels unknown)
      step_t/evaluate      Table-5 metrics, Table-7 energies (refined, mined)
    final/unary          train f_{T+1} on alpha_T^p; evaluated by the val loop

Step 0 departs from Algorithm 1's initialisation, which trains g_0 on the
seeds: here g_0, like every g_t, learns from labels mined from its unary
net's output. The seeds agree with f_0 (trained on them) wherever they are
labelled, so a g_0 trained on them gets no gradient to propagate and stays
at the identity (docs/benchmarks.md: the pairwise net on step 0).

With ``unary_labels='mined'`` the unary nets train on Y_{t-1} instead of
alpha_{t-1}^p (:meth:`IterativeAffinityLoop.unary_targets_dir`). Without a
pairwise net the refined labels are the unary ones.

Hooks receive ``after_em_stage(stage=...)`` and ``after_em_step(step=...,
record=...)`` (steps 0 .. T) / ``after_em_run(records=...)`` (custom hook
stages, which mmengine's ``call_hook`` supports).

The console gets one line per stage (what it trains or writes, and how
much), the stage's progress bar and, after each step, its Table-5 row
(:func:`~.console.announce`); every network's full training log goes to its
stage folder.
"""
import copy
import os
import os.path as osp
from functools import cached_property
from typing import Callable, List, Optional, Tuple

import torch
from mmengine.dist import barrier, broadcast_object_list, is_main_process
from mmengine.model import is_model_wrapper
from mmengine.runner import BaseLoop

from ..evaluation.energy import mean_energy
from ..evaluation.label_metrics import evaluate_label_dir
from ..labels.mining import CLASSIFIER_MODES, check_mining_mode, mine_labels
from ..labels.refinement import write_label_maps
from ..labels.seeds import CAM_OPTIONS, write_seeds
from ..labels.superpixels import SuperpixelCache
from ..registry import LOOPS
from .checkpoint import load_checkpoint_strict, load_model
from .console import announce
from .manifest import Manifest, config_hash
from .report import build_report, step_summary
from .stage_configs import (pairwise_stage_cfg, run_superpixel_cache,
                            set_superpixels, superpixel_options)
from .stage_runner import train_stage

UNARY_LABELS = ('mined', 'refined')
# The stages of every step, 0 .. num_steps.
STEP_STAGES = ('unary', 'unary_labels', 'confidence', 'mine', 'pairwise',
               'refine', 'evaluate')


def set_aside_stale_folder(folder: str) -> Optional[str]:
    """Move a non-empty ``folder`` to ``<folder>.stale`` (``.stale1``, ...
    when taken), kept, not deleted; returns where it went (None when there
    was nothing to move)."""
    if not osp.isdir(folder) or not os.listdir(folder):
        return None
    dest, number = f'{folder}.stale', 0
    while osp.exists(dest):
        number += 1
        dest = f'{folder}.stale{number}'
    os.replace(folder, dest)
    return dest


def on_main_process(stage: str, work: Callable[[], None]) -> None:
    """Run ``work()`` on rank 0 while the other ranks wait for it.

    In place of a barrier after rank-0-only work: rank 0 sends every rank
    whether ``work`` raised, so that its error stops them too (a
    RuntimeError naming ``stage`` and the error) instead of leaving them
    at a barrier that rank 0 never reaches. Rank 0 re-raises its own
    error. Without a process group this is ``work()``.
    """
    failure: List[Optional[str]] = [None]
    if is_main_process():
        try:
            work()
        except Exception as error:
            failure[0] = f'{type(error).__name__}: {error}'
            broadcast_object_list(failure)
            raise
    broadcast_object_list(failure)
    if failure[0] is not None:
        raise RuntimeError(f'stage {stage!r} failed on rank 0 '
                           f'({failure[0]}), so this rank stops too')


def seeds_dir(work_dir: str) -> str:
    """A run's seeds, f_0's training labels: ``<work_dir>/step_0/seeds``."""
    return osp.join(work_dir, 'step_0', 'seeds')


@LOOPS.register_module()
class IterativeAffinityLoop(BaseLoop):
    """Run seeds -> (f_t -> mine Y_t -> g_t -> refine) for t = 0 .. T ->
    final unary (the module docstring lists every stage).

    Args:
        runner (Runner): The outer runner; its ``model`` is the unary net
            that the final stage's weights are loaded into for evaluation.
        dataloader (DataLoader or dict): Training images with tags (an
            inference pipeline: no labels needed); labels are written for
            each of its images.
        num_steps (int): EM steps T after step 0 (the paper plateaus
            after 5).
        cam (dict): Runner sub-config of the CAM classifier.
        unary (dict): Runner sub-config of the unary net (any mmseg
            segmentor as ``model``).
        pairwise (dict, optional): Runner sub-config of the pairwise net
            (``SPNRefiner``; its ``model.unary`` is filled in). None skips
            the pairwise net.
        confidence (dict, optional): Runner sub-config of the region
            classifier; required by the mining modes that use it
            (``'relabel'``, ``'confirm'``).
        seeds (dict): Seed rule (``type`` + thresholds) and CAM inference
            options (``scales``, ``flip``).
        superpixels (dict): Superpixel ``method`` and its parameters.
        mining (dict): ``mode`` (one of
            :data:`~iaffinity_plugins.labels.mining.MINING_MODES`, default
            the paper's ``'relabel'``), ``ratio``, ``threshold``, and
            ``keep_objects`` (default False): Y_t keeps the objects of
            Y_{t-1} where it has background or unknown
            (:mod:`~iaffinity_plugins.labels.kept_objects`).
        unary_labels (str): What the unary net trains on after step 0
            (f_0 trains on the seeds): ``'refined'`` (Algorithm 1) the
            previous step's refined labels, or ``'mined'`` its Y (see
            :meth:`unary_targets_dir`).
        superpixel_pooling (bool): The E-step averages the refined
            probabilities G alpha_u inside each superpixel before the
            argmax (the smoothness within regions that the loss of eq. (8)
            asks of G, applied to its output): the refined labels follow
            the image's region boundaries. Without a pairwise net the
            refined labels are the unary probabilities pooled alike.
        refined_min_confidence (float, optional): The E-step leaves a
            refined pixel unknown (255) when its class has a smaller
            probability (after ``superpixel_pooling``; over background and
            the tags): f_{t+1} learns the confident part of alpha_t^p and
            decides the uncertain regions itself, as f_0 does the seeds'
            band. None: every pixel labelled.
        keep_tags (bool): A tagged class that a mined or refined map lost
            takes its pixels in the seeds (which keep every tag): a tagged
            object never vanishes from the labels a net trains on
            (:mod:`~iaffinity_plugins.labels.lost_tags`).
        final_unary (dict, optional): Overrides merged into ``unary`` for the
            final training (e.g. more iterations).
        unary_warm_start (dict, optional): When set, every unary net after
            f_0 starts from its predecessor's weights (f_t from f_{t-1}, the
            final net from f_T) and trains with these overrides merged into
            ``unary`` (whole entries, e.g. a shorter schedule's
            ``optim_wrapper``, ``param_scheduler`` and ``train_cfg``;
            ``final_unary`` is merged after them). None: each starts from
            its ``init_cfg`` weights.
        train_final (bool): Train the final unary net f_{T+1} (and evaluate
            it with the runner's val loop, when it has one).
        infer_short_edge (int, optional): f_t, g_t and the region
            classifier read every training image at this short edge when
            they write labels (set it to the scale their training crops
            were cut at); the label maps stay at the image's size. None
            reads images at their own size. The seeds have their own
            ``seeds.cam_short_edge``.
        energy_samples (int): Images (fixed: the first by image id) on which
            the Table-7 energies are averaged.
    """

    def __init__(self, runner, dataloader, num_steps: int, cam: dict,
                 unary: dict, pairwise: Optional[dict] = None,
                 confidence: Optional[dict] = None,
                 seeds: Optional[dict] = None,
                 superpixels: Optional[dict] = None,
                 mining: Optional[dict] = None,
                 unary_labels: str = 'refined',
                 superpixel_pooling: bool = False,
                 refined_min_confidence: Optional[float] = None,
                 keep_tags: bool = False,
                 final_unary: Optional[dict] = None,
                 unary_warm_start: Optional[dict] = None,
                 train_final: bool = True,
                 infer_short_edge: Optional[int] = None,
                 energy_samples: int = 100) -> None:
        super().__init__(runner, dataloader)
        mining = {**dict(mode='relabel', ratio=0.8, threshold=0.7),
                  **(mining or {})}
        check_mining_mode(mining['mode'], 'train_cfg.mining.mode')
        if not isinstance(mining.get('keep_objects', False), bool):
            raise TypeError('train_cfg.mining.keep_objects must be True or '
                            f"False, got {mining['keep_objects']!r}")
        if mining['mode'] in CLASSIFIER_MODES and confidence is None:
            raise ValueError(f"train_cfg.confidence is required when "
                             f"train_cfg.mining.mode == {mining['mode']!r}")
        if unary_labels not in UNARY_LABELS:
            raise ValueError(f'train_cfg.unary_labels must be one of '
                             f'{UNARY_LABELS}, got {unary_labels!r}')
        if infer_short_edge is not None and (
                isinstance(infer_short_edge, bool)
                or not isinstance(infer_short_edge, int)
                or infer_short_edge < 1):
            raise ValueError(f'train_cfg.infer_short_edge must be a positive '
                             f'number of pixels or None, got '
                             f'{infer_short_edge!r}')
        if num_steps < 0:
            raise ValueError(f'train_cfg.num_steps must be >= 0, got '
                             f'{num_steps}')
        self.num_steps = num_steps
        self.stage_cfgs = dict(cam=cam, unary=unary, pairwise=pairwise,
                               confidence=confidence)
        self.final_unary = final_unary or {}
        if unary_warm_start is not None and not isinstance(
                unary_warm_start, dict):
            raise TypeError('train_cfg.unary_warm_start must be a dict of '
                            'overrides of train_cfg.unary or None, got '
                            f'{unary_warm_start!r}')
        if unary_warm_start is not None and 'model' in unary_warm_start:
            raise ValueError('train_cfg.unary_warm_start cannot change the '
                             "unary net's model: f_t starts from f_{t-1}'s "
                             'weights and is read with train_cfg.unary.model')
        self.unary_warm_start = unary_warm_start
        self.train_final = train_final
        self.seeds = {'type': 'threshold', **(seeds or {})}
        self.superpixels = superpixel_options(superpixels)
        self.mining = mining
        self.unary_labels = unary_labels
        if not isinstance(superpixel_pooling, bool):
            raise TypeError('train_cfg.superpixel_pooling must be True or '
                            f'False, got {superpixel_pooling!r}')
        self.superpixel_pooling = superpixel_pooling
        if refined_min_confidence is not None and (
                isinstance(refined_min_confidence, bool)
                or not isinstance(refined_min_confidence, (int, float))
                or not 0 < refined_min_confidence <= 1):
            raise ValueError('train_cfg.refined_min_confidence must be in '
                             f'(0, 1] or None, got {refined_min_confidence!r}')
        self.refined_min_confidence = refined_min_confidence
        self.keep_tags = keep_tags
        self.infer_short_edge = infer_short_edge
        self.energy_samples = energy_samples
        self.work_dir = runner.work_dir
        self.manifest = Manifest(osp.join(self.work_dir, 'manifest.json'),
                                 writable=is_main_process())
        self.records: List[dict] = []
        self._iter = 0
        # Each stage's hash includes the previous one's, so a change
        # upstream is detected at every finished stage after it. The
        # legacy chain (version 3's rule, over absolute paths) checks the
        # records of an older manifest before they get the new hash.
        self._previous_hash = ''
        self._previous_legacy_hash = ''

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
        for step in range(self.num_steps + 1):
            names += [f'step_{step}/{stage}' for stage in STEP_STAGES]
        if self.train_final:
            names.append('final/unary')
        return names

    # --------------------------------------------------------- label folders
    def step_dir(self, step: int, name: str) -> str:
        """``<work_dir>/step_<step>/<name>``."""
        return osp.join(self.work_dir, f'step_{step}', name)

    def seeds_dir(self) -> str:
        """The seeds, f_0's training labels."""
        return seeds_dir(self.work_dir)

    def confident_labels_dir(self, step: int) -> str:
        """Y_step, the labels the pairwise net g_step trains on: the regions
        mined from f_step's output."""
        return self.step_dir(step, 'labels')

    def unary_output_dir(self, step: int) -> str:
        """f_step's output: the tag-restricted argmax of alpha_step^u."""
        return self.step_dir(step, 'unary_labels')

    def refined_dir(self, step: int) -> str:
        """The refined labels, argmax of alpha_step^p = G_step
        alpha_step^u (the unary output without a pairwise net)."""
        return self.step_dir(step, 'refined')

    def unary_targets_dir(self, step: int) -> str:
        """The labels the unary net f_step trains on (``num_steps + 1``:
        the final net).

        Step 0: the seeds. After it, ``unary_labels='refined'``
        (Algorithm 1: f_{t+1} is trained on alpha_t^p): the previous step's
        refined labels, dense where the mined ones leave much unknown;
        ``unary_labels='mined'``: the previous step's Y.
        """
        if step == 0:
            return self.seeds_dir()
        if self.unary_labels == 'refined':
            return self.refined_dir(step - 1)
        return self.confident_labels_dir(step - 1)

    # ------------------------------------------------------------------ run
    def run(self) -> torch.nn.Module:
        self.runner.call_hook('before_train')
        self._run_stage('seeds/cam', self.stage_cfgs['cam'], self._train_cam,
                        self._training('the CAM classifier on image tags',
                                       self.stage_cfgs['cam']))
        self._run_stage('seeds/labels', self.seeds, self._write_seeds,
                        self._writing('the seeds', self.seeds_dir()),
                        out_dir=self.seeds_dir())
        for step in range(self.num_steps + 1):
            self._run_step(step)
        final = None
        if self.train_final:
            final = self._run_final()
        self.runner.call_hook('after_em_run', records=self.records,
                              final=final)
        self.runner.call_hook('after_train')
        return self.runner.model

    def _run_step(self, step: int) -> None:
        """EM step t. M-step: f_t on alpha_{t-1}^p (the seeds at t = 0),
        Y_t mined from its output, g_t on Y_t; E-step: alpha_t^p = G_t
        alpha_t^u."""
        unary = self._stage_unary(step)
        self._stage_unary_labels(step, unary)
        confidence = self._stage_confidence(step)
        self._stage_mine(step, confidence)
        pairwise_cfg, pairwise = self._stage_pairwise(step, unary)
        self._stage_refine(step, unary, pairwise_cfg, pairwise)
        self._stage_evaluate(step, pairwise_cfg, pairwise)

    def _run_final(self) -> Optional[dict]:
        """f_{T+1} on the last step's labels, then the val loop's metrics
        (None without a val loop)."""
        step = self.num_steps + 1
        final_cfg, init_weights = self._unary_start(step)
        final_cfg.update(copy.deepcopy(self.final_unary))
        targets = self.unary_targets_dir(step)
        weights = self._run_stage(
            'final/unary', self._with_warm_start(final_cfg, init_weights),
            lambda: dict(weights=self._train_stage(
                final_cfg, osp.join(self.work_dir, 'final', 'unary'),
                'final/unary', targets, init_weights)),
            self._training(f'the final unary net f_{step}', final_cfg,
                           targets))
        model = self.runner.model
        load_checkpoint_strict(
            model.module if is_model_wrapper(model) else model,
            weights['weights'])
        if self.runner.val_loop is None:
            return None
        return self.runner.val_loop.run()

    # --------------------------------------------------------------- stages
    def _stage_unary(self, step: int) -> dict:
        """step_t/unary: f_t on :meth:`unary_targets_dir`."""
        cfg, init_weights = self._unary_start(step)
        targets = self.unary_targets_dir(step)
        return self._run_stage(
            f'step_{step}/unary',
            self._with_warm_start([cfg, targets], init_weights),
            lambda: dict(weights=self._train_stage(
                cfg, self.step_dir(step, 'unary'), f'step_{step}/unary',
                targets, init_weights)),
            self._training(f'the unary net f_{step}', cfg, targets))

    def _unary_start(self, step: int) -> Tuple[dict, Optional[str]]:
        """The config of f_step (``num_steps + 1``: the final net, before
        ``final_unary``) and the weights it starts from: f_{step-1}'s with
        ``unary_warm_start`` after step 0, else None."""
        cfg = copy.deepcopy(self.stage_cfgs['unary'])
        if self.unary_warm_start is None or step == 0:
            return cfg, None
        cfg.update(copy.deepcopy(self.unary_warm_start))
        previous = self.manifest.record(f'step_{step - 1}/unary')
        return cfg, previous['outputs']['weights']

    @staticmethod
    def _with_warm_start(stage_cfg, init_weights: Optional[str]):
        """A unary stage's hashed config, marked when it starts from its
        predecessor (so that runs without ``unary_warm_start`` keep their
        hashes; the predecessor itself is in the hash chain)."""
        if init_weights is None:
            return stage_cfg
        return [stage_cfg, 'warm_start']

    def _stage_unary_labels(self, step: int, unary: dict) -> None:
        """step_t/unary_labels: f_t's output, which mining starts from."""
        out_dir = self.unary_output_dir(step)
        self._run_stage(
            f'step_{step}/unary_labels', self._with_inference([unary]),
            lambda: dict(summary=self._write_label_maps(
                unary, None, None, dict(unary=out_dir))),
            self._writing(f"f_{step}'s output", out_dir), out_dir=out_dir)

    def _stage_pairwise(self, step: int,
                        unary: dict) -> Tuple[Optional[dict], dict]:
        """step_t/pairwise: g_t on Y_t, holding f_t; returns its config
        (None without a pairwise net) and outputs."""
        pairwise_cfg = self._pairwise_cfg(unary['weights'])
        labels = self.confident_labels_dir(step)
        pairwise = self._run_stage(
            f'step_{step}/pairwise', [pairwise_cfg, labels],
            lambda: dict(weights=None if pairwise_cfg is None else
                         self._train_stage(pairwise_cfg,
                                           self.step_dir(step, 'pairwise'),
                                           f'step_{step}/pairwise', labels)),
            'no pairwise net (pairwise=None)' if pairwise_cfg is None else
            self._training(f'the pairwise net g_{step}', pairwise_cfg,
                           labels))
        return pairwise_cfg, pairwise

    def _stage_refine(self, step: int, unary: dict,
                      pairwise_cfg: Optional[dict], pairwise: dict) -> None:
        """step_t/refine: the E-step, alpha_t^p = G_t alpha_t^u."""
        out_dir = self.refined_dir(step)
        pooling = self.superpixel_pooling
        # Hashed only when on, so that runs without them keep their hashes.
        hashed = [unary, pairwise] + (
            [dict(superpixel_pooling=self.superpixels)] if pooling else []) + (
            [dict(refined_min_confidence=self.refined_min_confidence)]
            if self.refined_min_confidence is not None else [])
        self._run_stage(
            f'step_{step}/refine',
            self._with_inference(self._with_keep_tags(hashed)),
            lambda: dict(summary=self._write_label_maps(
                unary, pairwise_cfg, pairwise['weights'],
                dict(refined=out_dir), self._keep_tags_from(),
                self._superpixel_cache() if pooling else None,
                self.refined_min_confidence)),
            self._writing('the refined labels', out_dir), out_dir=out_dir)

    def _stage_confidence(self, step: int) -> dict:
        """step_t/confidence: the region classifier on f_t's output (no
        network when the mining mode needs none)."""
        used = self.mining['mode'] in CLASSIFIER_MODES
        cfg = self.stage_cfgs['confidence'] if used else None
        unary_output = self.unary_output_dir(step)
        return self._run_stage(
            f'step_{step}/confidence', [cfg, self.superpixels, unary_output],
            lambda: dict(weights=self._train_confidence(step)
                         if used else None),
            self._training('the region classifier', cfg, unary_output)
            if used else f"no region classifier (mining mode "
            f"{self.mining['mode']!r})")

    def _stage_mine(self, step: int, confidence: dict) -> None:
        """step_t/mine: Y_t from f_t's output (with ``keep_objects``, Y_{t-1}'s
        objects kept)."""
        out_dir = self.confident_labels_dir(step)
        previous = (self.confident_labels_dir(step - 1)
                    if self.mining.get('keep_objects') and step > 0 else None)
        # Hashed only where it acts (not at step 0): step 0 keeps its hash
        # when it is switched on, and runs with it off keep theirs.
        mining = {key: value for key, value in self.mining.items()
                  if key != 'keep_objects'}
        if previous is not None:
            mining['keep_objects'] = True
        self._run_stage(
            f'step_{step}/mine',
            self._with_inference(self._with_keep_tags([mining, confidence])),
            lambda: self._mine(confidence['weights'],
                               self.unary_output_dir(step), out_dir,
                               previous),
            self._writing(f"mined labels Y_{step} (mode "
                          f"{self.mining['mode']!r})", out_dir),
            out_dir=out_dir)

    def _stage_evaluate(self, step: int, pairwise_cfg: Optional[dict],
                        pairwise: dict) -> None:
        """step_t/evaluate, then the step's console row and hooks."""
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

    def _run_stage(self, name: str, stage_cfg, work, what: str,
                   out_dir: Optional[str] = None) -> dict:
        """Run ``work()`` unless the manifest says ``name`` is done.

        Args:
            what (str): What the stage does, for its console line.
            out_dir (str, optional): The label folder the stage writes. A
                label writer skips the images already there (a killed stage
                resumes), so a stage that starts afresh (no record, or one of
                another config: its manifest entry deleted after a config
                change) first sets aside what an earlier config left there
                (:func:`set_aside_stale_folder`, on rank 0; should that
                fail, :func:`on_main_process` stops the other ranks too).

        Returns:
            dict: The stage's outputs (from the manifest when skipped).
        """
        stage_hash = self.manifest.stage_hash(stage_cfg, self._previous_hash)
        legacy_hash = config_hash(stage_cfg, self._previous_legacy_hash)
        self._previous_hash = stage_hash
        self._previous_legacy_hash = legacy_hash
        if self.manifest.is_done(name, stage_hash, legacy_hash):
            announce(self.runner.logger,
                     f'[iaffinity] {name}: done, skipped ({what})')
            outputs = self.manifest.record(name)['outputs']
        else:
            announce(self.runner.logger, f'[iaffinity] {name}: {what}')
            on_main_process(name, lambda: self._set_aside_stale_outputs(
                name, out_dir, stage_hash, legacy_hash))
            self.manifest.mark_running(name, stage_hash)
            outputs = work() or {}
            # Every rank must have finished writing before rank 0 marks the
            # stage done: a killed run must never see half a stage as done.
            barrier()
            self.manifest.mark_done(name, stage_hash, outputs=outputs)
        self._iter += 1
        self.runner.call_hook('after_em_stage', stage=name, outputs=outputs)
        return outputs

    def _set_aside_stale_outputs(self, name: str, out_dir: Optional[str],
                                 stage_hash: str, legacy_hash: str) -> None:
        """Set aside (:func:`set_aside_stale_folder`, logged) what an
        earlier config left in ``out_dir`` when stage ``name`` starts
        afresh (the manifest has no record of it with this config)."""
        if out_dir is None or self.manifest.started_with(name, stage_hash,
                                                         legacy_hash):
            return
        stale = set_aside_stale_folder(out_dir)
        if stale is not None:
            self.runner.logger.warning(
                f'[iaffinity] {name}: {out_dir} holds labels of another '
                f'config, moved to {stale}')

    def _train_stage(self, stage_cfg: dict, work_dir: str, name: str,
                     label_dir: Optional[str],
                     init_weights: Optional[str] = None) -> str:
        """:func:`~.stage_runner.train_stage` for the running stage, its
        checkpoints marked with the stage's manifest hash (which
        :meth:`_run_stage` has just stored in ``_previous_hash``): chained
        over every stage before it (new seeds make f_0's old checkpoints
        another config's) and the same wherever the work dir lies."""
        return train_stage(stage_cfg, self.runner.cfg, work_dir, name,
                           label_dir, config_id=self._previous_hash,
                           init_weights=init_weights)

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
        return dict(weights=self._train_stage(
            self.stage_cfgs['cam'], osp.join(self.work_dir, 'step_0', 'cam'),
            'seeds/cam', label_dir=None))

    def _write_seeds(self) -> dict:
        cam_weights = self.manifest.record('seeds/cam')['outputs']['weights']
        model = self._load_model(self.stage_cfgs['cam']['model'],
                                 cam_weights)
        seed_cfg = {key: value for key, value in self.seeds.items()
                    if key not in CAM_OPTIONS}
        cam_options = {key: self.seeds[key] for key in CAM_OPTIONS
                       if key in self.seeds}
        seeds_dir = self.seeds_dir()
        summary = write_seeds(model, self.dataset, seeds_dir, seed_cfg,
                              **cam_options)
        barrier()  # every rank's shard is written before it is evaluated
        return dict(summary=summary, quality=self._label_quality(seeds_dir))

    @property
    def seeds_quality(self) -> Optional[dict]:
        """mIoU/precision/labelled fraction of the seeds, measured once when
        they were written (None before that or without ground truth)."""
        record = self.manifest.record('seeds/labels')
        if record is None or record['state'] != 'done':
            return None
        if 'quality' not in record['outputs']:  # a manifest from before
            return self._label_quality(self.seeds_dir())
        return record['outputs']['quality']

    def _keep_tags_from(self) -> Optional[str]:
        """Where a map's lost tags are restored from (``keep_tags``): the
        seeds."""
        return self.seeds_dir() if self.keep_tags else None

    def _with_keep_tags(self, stage_cfg: list) -> list:
        """A mining or refine stage's hashed config, ``keep_tags`` added
        when on (so that runs from before the switch keep their hashes)."""
        return stage_cfg + ['keep_tags'] if self.keep_tags else stage_cfg

    def _with_inference(self, stage_cfg: list) -> list:
        """A label-writing stage's hashed config, ``infer_short_edge``
        added when set (so that runs without it keep their hashes)."""
        if self.infer_short_edge is None:
            return stage_cfg
        return stage_cfg + [dict(infer_short_edge=self.infer_short_edge)]

    # ------------------------------------------------------ pairwise / refine
    def _pairwise_cfg(self, unary_weights: str) -> Optional[dict]:
        """The pairwise runner config with the trained unary net filled in
        (:func:`~.stage_configs.pairwise_stage_cfg`)."""
        return pairwise_stage_cfg(self.stage_cfgs['pairwise'],
                                  self.stage_cfgs['unary']['model'],
                                  unary_weights, self.work_dir,
                                  self.superpixels)

    def _write_label_maps(self, unary: dict, pairwise_cfg: Optional[dict],
                          pairwise_weights: Optional[str],
                          out_dirs: dict,
                          keep_tags_from: Optional[str] = None,
                          superpixel_cache: Optional[SuperpixelCache] = None,
                          min_confidence: Optional[float] = None) -> dict:
        """f_t's output and/or the refined labels (``out_dirs``,
        ``keep_tags_from``, ``superpixel_cache``, ``min_confidence``: see
        :func:`~iaffinity_plugins.labels.refinement.write_label_maps`)."""
        unary_net = self._load_model(self.stage_cfgs['unary']['model'],
                                     unary['weights'])
        refiner = None if pairwise_cfg is None else self._load_model(
            pairwise_cfg['model'], pairwise_weights)
        return write_label_maps(unary_net, refiner, self.dataset, out_dirs,
                                min_confidence=min_confidence,
                                keep_tags_from=keep_tags_from,
                                short_edge=self.infer_short_edge,
                                superpixel_cache=superpixel_cache)

    # ---------------------------------------------------------------- mining
    def _superpixel_cache(self) -> SuperpixelCache:
        return run_superpixel_cache(self.work_dir, self.superpixels)

    def _train_confidence(self, step: int) -> str:
        cfg = copy.deepcopy(self.stage_cfgs['confidence'])
        set_superpixels(cfg, self.work_dir, self.superpixels)
        return self._train_stage(cfg, self.step_dir(step, 'confidence'),
                                 f'step_{step}/confidence',
                                 self.unary_output_dir(step))

    def _mine(self, confidence_weights: Optional[str], label_dir: str,
              out_dir: str, keep_objects_from: Optional[str] = None) -> dict:
        model = None if confidence_weights is None else self._load_model(
            self.stage_cfgs['confidence']['model'], confidence_weights)
        summary = mine_labels(model, self.dataset, label_dir, out_dir,
                              self._superpixel_cache(),
                              ratio=self.mining['ratio'],
                              threshold=self.mining['threshold'],
                              mode=self.mining['mode'],
                              keep_tags_from=self._keep_tags_from(),
                              keep_objects_from=keep_objects_from,
                              short_edge=self.infer_short_edge)
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
        mined = self.confident_labels_dir(step)
        quality = dict(
            seeds=self.seeds_quality,
            unary=self._label_quality(self.unary_output_dir(step)),
            refined=self._label_quality(self.refined_dir(step)),
            mined=self._label_quality(mined))
        energies = dict(energy_refined=None, energy_mined=None)
        if pairwise_cfg is not None:
            refiner = self._load_model(pairwise_cfg['model'],
                                       pairwise_weights)
            energies['energy_refined'] = self._mean_energy(
                refiner, self.refined_dir(step))
            energies['energy_mined'] = self._mean_energy(refiner, mined)
        return dict(step=step, quality=quality, **energies)

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

    def _mean_energy(self, refiner, label_dir: str) -> Optional[float]:
        """Mean J = <a, a - G a> over a fixed sample of training images
        (:func:`~iaffinity_plugins.evaluation.energy.mean_energy`)."""
        return mean_energy(refiner, self.dataset, label_dir,
                           self.energy_samples, self.infer_short_edge)

    # ----------------------------------------------------------------- utils
    def _load_model(self, model_cfg: dict,
                    weights: str) -> torch.nn.Module:
        """Build a model from its config and load a stage's final weights,
        on the outer runner's device."""
        return load_model(model_cfg, weights,
                          next(self.runner.model.parameters()).device)
