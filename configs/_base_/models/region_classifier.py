# Region confidence network (paper Sec. 3.3): mmseg's ResNetV1c-18 with
# output stride 8 (small superpixels still cover a feature cell), masked
# average pooling per superpixel, an MLP over the K classes. Optimiser: the
# paper's step schedule in ../schedules/schedule_confidence_step.py.
# ImageNet weights: leaf configs set the backbone's init_cfg to a local
# checkpoint, e.g. dict(type='Pretrained',
# checkpoint='open-mmlab://resnet18_v1c') (mmengine fails on a missing
# Pretrained path).
norm_cfg = dict(type='BN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    # Training batches need a common size; the model pads superpixels alike.
    size_divisor=8)
model = dict(
    type='RegionClassifier',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='ResNetV1c',
        depth=18,
        num_stages=4,
        out_indices=(3, ),
        dilations=(1, 1, 2, 4),
        strides=(1, 2, 1, 1),
        norm_cfg=norm_cfg,
        norm_eval=False,
        style='pytorch',
        contract_dilation=True,
        init_cfg=None),
    in_index=-1,
    in_channels=512,
    hidden_channels=256,
    dropout=0.5,
    num_classes=None,  # K, background included: filled from the data
    ratio=0.8)  # a training region takes class c when > 80 % of it is c
# Superpixels (Felzenszwalb-Huttenlocher, skimage parameters), cached per
# image; any method of the 'superpixel_method' plugins can be named.
superpixels = dict(method='felzenszwalb', scale=100, sigma=0.8, min_size=20)
# Confident-region mining: the 80 % proposal rule and the 0.7 confidence.
# mode: 'relabel' (paper: every superpixel re-predicted), 'confirm' (keep
# the proposed regions the classifier confirms), 'majority' (proposal only)
# or 'none' (Table 6 "no mining": the labels are used as they are).
mining = dict(ratio=0.8, threshold=0.7, mode='relabel')
