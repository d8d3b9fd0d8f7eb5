# The paper's VGG16 setting on PASCAL VOC 2012 + SBD (train_aug 10,582,
# evaluated on val 1,449): Table 1, 62.0 mIoU on val.
#   python tools/train.py configs/iaffinity/deeplab_vgg16_voc.py
# ImageNet weights are read from local files (no download at run time):
#   data/pretrained/vgg16_torchvision.pth   torchvision vgg16 state_dict
#   data/pretrained/resnet18_v1c.pth        mmseg ResNetV1c-18 (confidence)
# Every num_classes=None is filled from the data (heads K, CAM K - 1).
_base_ = [
    '../_base_/datasets/voc12_aug.py', '../_base_/default_runtime.py'
]

crop_size = (321, 321)
norm_cfg = dict(type='BN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=crop_size)
vgg16 = dict(
    type='VGG16LargeFOV',
    out_indices=(4, ),
    init_cfg=dict(
        type='Pretrained', checkpoint='data/pretrained/vgg16_torchvision.pth'))

# --- the four networks -----------------------------------------------------
cam_model = dict(
    type='CAMClassifier',
    data_preprocessor=data_preprocessor,
    backbone=vgg16,
    in_channels=512,
    num_classes=None)
unary_model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=vgg16,
    decode_head=dict(
        type='DeepLabV2Head',  # DeepLab-LargeFOV: fc6 (dilation 12), fc7, fc8
        in_channels=512,
        in_index=-1,
        channels=1024,
        dilations=(12, ),
        dropout_ratio=0.5,
        num_classes=None,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', loss_weight=1.0, avg_non_ignore=True),
        ignore_index=255),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
pairwise_model = dict(
    type='SPNRefiner',
    data_preprocessor=data_preprocessor,
    unary=None,  # the step's trained unary net, filled in by the loop
    head=dict(
        type='SPNHead',
        num_classes=None,
        # alpha_p = G alpha_u: the K probabilities propagated, renormalised
        propagation_channels=None,
        output='normalized',
        channels=(32, 64, 128),
        propagation_stride=2,
        # mean of the 4 scans, not SPN's max: docs/benchmarks.md
        merge='mean'),
    loss_smooth=dict(type='SuperpixelSmoothnessLoss', loss_weight=1.0))
confidence_model = dict(
    type='RegionClassifier',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='ResNetV1c',
        depth=18,
        out_indices=(3, ),
        dilations=(1, 1, 2, 4),
        strides=(1, 2, 1, 1),
        norm_cfg=norm_cfg,
        contract_dilation=True,
        init_cfg=dict(
            type='Pretrained', checkpoint='data/pretrained/resnet18_v1c.pth')),
    in_channels=512,
    hidden_channels=256,
    num_classes=None)

# --- pipelines of the stages -----------------------------------------------
# cache_dir and the superpixel parameters are filled in by the loop.
load_superpixels = dict(type='LoadSuperpixels', cache_dir=None)
random_crop = [
    dict(type='RandomResize', scale=(2048, 428), ratio_range=(0.75, 1.5),
         keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackWSSSInputs')
]
# The CAM classifier also gets colour jitter, as in PSA's classifier
# training (ColorJitter), which the paper's CAM follows.
cam_pipeline = [dict(type='LoadImageWithCheck')] + random_crop[:-1] + [
    dict(type='PhotoMetricDistortion'), random_crop[-1]
]
label_pipeline = [
    dict(type='LoadImageWithCheck'),
    dict(type='LoadAnnotationsWithCheck')
] + random_crop
superpixel_pipeline = [
    dict(type='LoadImageWithCheck'),
    dict(type='LoadAnnotationsWithCheck'), load_superpixels
] + random_crop

# --- the EM loop (Algorithm 1) ---------------------------------------------
model = unary_model  # the final network, evaluated on val
# The training images with their tags: labels are made for each of them.
train_dataloader = dict(
    _delete_=True,
    batch_size=1,
    num_workers=2,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type={{_base_.dataset_type}},
        data_root={{_base_.data_root}},
        data_prefix=dict(
            img_path='JPEGImages', seg_map_path='SegmentationClassAug'),
        ann_file='ImageSets/Segmentation/train_aug.txt',
        pipeline={{_base_.infer_pipeline}}))
# mmengine's Runner requires an optimiser with a train loop; every stage
# brings its own, so this one is never stepped.
optim_wrapper = dict(
    type='OptimWrapper', optimizer=dict(type='SGD', lr=1e-3, momentum=0.9))
iters = 20000  # K of eq. (10)/(11)


# Every stage: SGD with momentum 0.9 and weight decay 5e-4 (the paper's
# DeepLab settings), by iteration.
def sgd(lr, **kwargs):
    return dict(type='OptimWrapper',
                optimizer=dict(type='SGD', lr=lr, momentum=0.9,
                               weight_decay=5e-4),
                **kwargs)


def poly(power, end):
    return [dict(type='PolyLR', power=power, begin=0, end=end,
                 by_epoch=False, eta_min=0.0)]


def iterations(max_iters):
    return dict(type='IterBasedTrainLoop', max_iters=max_iters)


train_cfg = dict(
    type='IterativeAffinityLoop',
    num_steps=5,  # the paper plateaus after 5 steps (Table 5)
    cam=dict(
        model=cam_model,
        pipeline=cam_pipeline,
        batch_size=8,
        optim_wrapper=sgd(1e-2, paramwise_cfg=dict(
            custom_keys={'classifier': dict(lr_mult=10.)})),
        param_scheduler=poly(0.9, 8000),
        train_cfg=iterations(8000)),
    # Eq. (10): base lr 1e-3, poly power 0.9, momentum 0.9.
    unary=dict(
        model=unary_model,
        pipeline=label_pipeline,
        batch_size=10,
        optim_wrapper=sgd(1e-3),
        param_scheduler=poly(0.9, iters),
        train_cfg=iterations(iters)),
    # Sec. 4.2: base lr 1e-5, poly power 0.5, momentum 0.9.
    pairwise=dict(
        model=pairwise_model,
        pipeline=superpixel_pipeline,
        batch_size=10,
        optim_wrapper=sgd(1e-5),
        param_scheduler=poly(0.5, iters),
        train_cfg=iterations(iters)),
    # Eq. (11): base lr 1e-3, x0.1 every 20,000 iterations, momentum 0.9.
    confidence=dict(
        model=confidence_model,
        pipeline=superpixel_pipeline,
        batch_size=10,
        optim_wrapper=sgd(1e-3),
        param_scheduler=[
            dict(type='StepLR', step_size=iters, gamma=0.1, begin=0,
                 by_epoch=False)
        ],
        train_cfg=iterations(iters)),
    seeds=dict(type='threshold', fg_threshold=0.30, bg_threshold=0.05,
               scales=(1.0, 0.5, 1.5, 2.0), flip=True),
    superpixels=dict(method='felzenszwalb', scale=100, sigma=0.8,
                     min_size=20),
    mining=dict(mode='relabel', ratio=0.8, threshold=0.7),
    # Algorithm 1: f_{t+1} learns from the refined alpha_t^p, g_{t+1} from
    # the mined Y_{t+1} ('mined' trains both on Y_t; docs/benchmarks.md).
    unary_labels='refined',
    energy_samples=500)  # Table 7 averages over 500 images
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2000,
                    max_keep_ckpts=1))
custom_hooks = [dict(type='EMReportHook')]
# The console shows the loop's stage lines, progress bars and step rows;
# each network's full mmengine log goes to its stage folder.
runner_type = 'QuietConsoleRunner'
randomness = dict(seed=0)
