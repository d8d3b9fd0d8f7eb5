# Procedural synthetic set (iaffinity_plugins/datasets/synthetic.py), made
# in data_root on first use. Override the folder for every split, e.g.
# --cfg-options train_dataloader.dataset.data_root=PATH
#   val_dataloader.dataset.data_root=PATH test_dataloader.dataset.data_root=PATH
dataset_type = 'SyntheticWSSSDataset'
data_root = 'data/synthetic'
generator_cfg = dict(
    num_train=1000,
    num_val=50,
    min_size=96,
    max_size=128,
    num_classes=5,
    max_objects=3,
    core_radius=0.75,  # textured core per object, in object radii
    seed=0)
crop_size = (96, 96)
train_pipeline = [
    dict(type='LoadImageWithCheck'),
    dict(type='LoadAnnotationsWithCheck'),
    # Short edge resized to 96..192 (keep_ratio fits inside (w, h) = scale x
    # ratio): every crop is full size, so no padding is needed (mmcv's Pad
    # would not pad gt_superpixels).
    dict(
        type='RandomResize',
        scale=(512, 128),
        ratio_range=(0.75, 1.5),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackWSSSInputs')
]
test_pipeline = [
    dict(type='LoadImageWithCheck'),
    dict(type='LoadAnnotationsWithCheck'),
    dict(type='PackWSSSInputs')
]
# Label making (seeds, refinement): images only, no labels needed.
infer_pipeline = [dict(type='LoadImageWithCheck'), dict(type='PackWSSSInputs')]
train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        generator_cfg=generator_cfg,
        ann_file='ImageSets/Segmentation/train.txt',
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        generator_cfg=generator_cfg,
        ann_file='ImageSets/Segmentation/val.txt',
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
