# CAM classifier on mmseg's ResNetV1c-50 with output stride 16 (as IRN: the
# last stage dilated, the third strided).
# ImageNet weights: leaf configs set the backbone's init_cfg to a local
# checkpoint (mmengine fails on a missing Pretrained path).
norm_cfg = dict(type='BN', requires_grad=True)
# Training batches need a common size: leaf configs add
# model = dict(data_preprocessor=dict(size=crop_size)) as mmseg's do.
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255)
model = dict(
    type='CAMClassifier',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='ResNetV1c',
        depth=50,
        num_stages=4,
        out_indices=(3, ),
        dilations=(1, 1, 1, 2),
        strides=(1, 2, 2, 1),
        norm_cfg=norm_cfg,
        # Frozen BN statistics: CAM batches are small.
        norm_eval=True,
        style='pytorch',
        contract_dilation=True,
        init_cfg=None),
    in_channels=2048,
    num_classes=20,  # foreground classes K-1
    loss_cls=dict(type='MultiLabelSoftMarginLoss', loss_weight=1.0))
cam_cfg = dict(scales=(1.0, 0.5, 1.5, 2.0), flip=True)
seed_cfg = dict(type='threshold', fg_threshold=0.30, bg_threshold=0.05)
