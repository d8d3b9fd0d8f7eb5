# The README demo: the whole EM loop (Algorithm 1) on the procedural
# synthetic set, small networks from random init, on 2 CPU cores.
#   python tools/train.py configs/iaffinity/synthetic_demo.py
# The loop's shared settings and heads are in ../_base_/em_loop.py; this
# file states what this data gets: its set, backbones, pipelines, schedules
# and seed rule.
_base_ = ['../_base_/datasets/synthetic.py', '../_base_/em_loop.py']

norm_cfg = dict(type='BN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size={{_base_.crop_size}})
# A narrow dilated ResNet-18 (output stride 8): any mmseg backbone fits here.
backbone = dict(
    type='ResNetV1c',
    depth=18,
    stem_channels=16,
    base_channels=16,
    strides=(1, 2, 1, 1),
    dilations=(1, 1, 2, 4),
    out_indices=(3, ),
    norm_cfg=norm_cfg,
    contract_dilation=True)
backbone_channels = 128
# The CAM classifier stops after stage 3 (64 channels, stride 8): on 96 px
# images the full network's receptive field covers the whole image and its
# CAMs stop localising objects.
cam_backbone = dict(
    backbone,
    num_stages=3,
    strides=(1, 2, 1),
    dilations=(1, 1, 1),
    out_indices=(2, ))

# --- the four networks of the loop -----------------------------------------
cam_model = dict(
    _base_.cam_model,
    data_preprocessor=data_preprocessor,
    backbone=cam_backbone,
    in_channels=64)
unary_model = dict(
    _base_.unary_model,
    data_preprocessor=data_preprocessor,
    backbone=backbone,
    decode_head=dict(_base_.unary_head, in_channels=backbone_channels))
pairwise_model = dict(
    _base_.pairwise_model,
    data_preprocessor=data_preprocessor,
    head=_base_.spn_head)
confidence_model = dict(
    _base_.confidence_model,
    data_preprocessor=data_preprocessor,
    backbone=backbone,
    in_channels=backbone_channels)

# --- data of each stage ----------------------------------------------------
crop_size = {{_base_.crop_size}}


def random_crop(short_edge, ratio_range, colour_jitter):
    """Resize (short edge ``short_edge`` x ratio), crop, flip, [jitter], pack."""
    return [
        dict(type='RandomResize', scale=(512, short_edge),
             ratio_range=ratio_range, keep_ratio=True),
        dict(type='RandomCrop', crop_size=crop_size),
        dict(type='RandomFlip', prob=0.5),
        *([dict(type='PhotoMetricDistortion')] if colour_jitter else []),
        dict(type='PackWSSSInputs')
    ]


# Image tags stay true for a crop only if the crop keeps most of the image:
# short edge 96..120 px for 96 px crops. Colour jitter, as in PSA's CAM
# training: without it the random-init classifier learns the training
# images' colours (docs/benchmarks.md: +5.6 seed mIoU); the unary net gets
# it for the same reason.
cam_pipeline = [dict(type='LoadImageWithCheck')] + random_crop(
    96, (1.0, 1.25), colour_jitter=True)
load_labels = [
    dict(type='LoadImageWithCheck'),
    dict(type='LoadAnnotationsWithCheck')
]
unary_pipeline = load_labels + random_crop(128, (0.75, 1.5),
                                           colour_jitter=True)
superpixel_pipeline = load_labels + [_base_.load_superpixels] + random_crop(
    128, (0.75, 1.5), colour_jitter=False)
# --- the EM loop -----------------------------------------------------------
model = unary_model  # the final network, evaluated on val
# The training images with their tags: labels are made for each of them.
train_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type={{_base_.dataset_type}},
        data_root={{_base_.data_root}},
        generator_cfg={{_base_.generator_cfg}},
        ann_file='ImageSets/Segmentation/train.txt',
        pipeline={{_base_.infer_pipeline}}))
# Every stage trains on the run's training images (train_dataloader above)
# with its own pipeline. The paper fine-tunes ImageNet models with SGD (the
# VOC configs keep its schedules); these small networks start from random
# init, where AdamW converges in the thousand or so iterations a CPU demo
# has. The unary net needs about 1,500 of them to learn beyond its seeds;
# with that, steps 0 and 1 (f_t, mining, g_t) and the final net fill the
# 20-minute budget on 2 cores (docs/benchmarks.md).
def poly(iters):
    return [dict(type='PolyLR', power=0.9, begin=0, end=iters,
                 by_epoch=False, eta_min=0.0)]


def adamw(lr):
    return dict(type='OptimWrapper',
                optimizer=dict(type='AdamW', lr=lr, weight_decay=1e-4))


train_cfg = dict(
    num_steps=1,
    cam=dict(
        model=cam_model,
        pipeline=cam_pipeline,
        optim_wrapper=adamw(2e-3),
        param_scheduler=poly(3000),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=3000)),
    unary=dict(
        model=unary_model,
        pipeline=unary_pipeline,
        optim_wrapper=adamw(2e-3),
        param_scheduler=poly(1500),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=1500)),
    pairwise=dict(
        model=pairwise_model,
        pipeline=superpixel_pipeline,
        optim_wrapper=adamw(1e-3),
        param_scheduler=poly(300),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=300)),
    confidence=dict(
        model=confidence_model,
        pipeline=superpixel_pipeline,
        optim_wrapper=adamw(1e-3),
        param_scheduler=poly(300),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=300)),
    seeds=dict(type='threshold', fg_threshold=0.40, bg_threshold=0.20,
               scales=(1.0, 0.5, 1.5), flip=True),
    # The final unary net trains longer, on the last step's labels (the
    # refined ones with unary_labels='refined').
    final_unary=dict(
        param_scheduler=poly(2000),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=2000)))
