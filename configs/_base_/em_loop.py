# What every EM loop config shares, whatever its data and backbones: the
# runtime, the loop's fixed settings (superpixels, mining, label flow), its
# hooks and console, and the four networks' heads. A leaf config adds its
# data set, pipelines, backbones (with their channels and normalisation),
# schedules and seed rule; see synthetic_demo.py (from-scratch nets on the
# synthetic set) and deeplab_lite0_custom.py (ImageNet lite0 on photographs).
# Every num_classes=None is filled from the data's class list by
# tools/train.py (heads: K; CAM classifier: K - 1).
_base_ = ['./default_runtime.py']

# --- the four networks, without their backbones --------------------------------
# Each leaf sets data_preprocessor, backbone and in_channels.
cam_model = dict(type='CAMClassifier', num_classes=None)
unary_head = dict(
    type='DeepLabV2Head',
    in_index=-1,
    channels=128,
    dilations=(2, 4),
    dropout_ratio=0.1,
    num_classes=None,
    align_corners=False,
    loss_decode=dict(
        type='CrossEntropyLoss', loss_weight=1.0, avg_non_ignore=True),
    ignore_index=255)
unary_model = dict(
    type='EncoderDecoder',
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
# alpha_p = G alpha_u (the paper): the K class probabilities themselves are
# propagated and renormalised, no free K -> P -> K projection that would let
# the head memorise the noisy labels (see SPNHead).
spn_head = dict(
    type='SPNHead',
    num_classes=None,
    propagation_channels=None,
    output='normalized',
    channels=(16, 32, 64),
    propagation_stride=2,
    # mean of the 4 scans, not SPN's max: docs/benchmarks.md
    merge='mean')
# The region smoothness loss L_s of eq. (8).
smoothness_loss = dict(type='SuperpixelSmoothnessLoss', loss_weight=1.0)
pairwise_model = dict(
    type='SPNRefiner',
    unary=None,  # the trained unary net of the step, filled in by the loop
    loss_smooth=smoothness_loss)
confidence_model = dict(
    type='RegionClassifier', hidden_channels=128, num_classes=None)

# --- the EM loop ----------------------------------------------------------------
superpixel_cfg = dict(method='felzenszwalb', scale=100, sigma=0.8,
                      min_size=20)
# cache_dir and the superpixel parameters are filled in by the loop.
load_superpixels = dict(type='LoadSuperpixels', cache_dir=None)
# mmengine's Runner requires an optimiser with a train loop; every stage
# brings its own, so this one is never stepped.
optim_wrapper = dict(
    type='OptimWrapper', optimizer=dict(type='SGD', lr=0.01, momentum=0.9))
train_cfg = dict(
    type='IterativeAffinityLoop',
    superpixels=superpixel_cfg,
    # Sec. 3.3: the region classifier (trained on the 80 % rule's regions of
    # f_t's output) keeps a proposed region when > 0.7 sure of its class.
    # 'relabel' (every superpixel re-predicted, Fig. 4's correction) labels
    # more and less precisely: on the photo demo 92.8 % at 61.2 precision,
    # and g_1 trained on it falls 2.6 below f_1, against 85.0 % at 68.9
    # and +1.7 with 'confirm' (docs/benchmarks.md).
    mining=dict(mode='confirm', ratio=0.8, threshold=0.7),
    # Algorithm 1: f_{t+1} learns from the refined alpha_t^p, g_{t+1} from
    # the mined Y_{t+1} ('mined' trains f_{t+1} on Y_t; docs/benchmarks.md).
    unary_labels='refined',
    # Tags are the one sure thing: a tagged class that a mined or refined
    # map lost takes its seed pixels (on the photo demo f_1 +2.1 on Y_0,
    # +0.5 on refined labels; docs/benchmarks.md).
    keep_tags=True,
    energy_samples=50)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=100,
                    max_keep_ckpts=1))
custom_hooks = [dict(type='EMReportHook')]
# The console shows the loop's stage lines, progress bars and step rows;
# each network's full mmengine log goes to its stage folder.
runner_type = 'QuietConsoleRunner'
randomness = dict(seed=0)
