# DeepLab-v2 ASPP-L on mmseg's ResNetV1c-101 (dilated, output stride 8).
# ImageNet weights: leaf configs set
#   model = dict(backbone=dict(init_cfg=dict(
#       type='Pretrained', checkpoint='data/pretrained/resnet101_v1c.pth')))
norm_cfg = dict(type='SyncBN', requires_grad=True)
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
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='ResNetV1c',
        depth=101,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        dilations=(1, 1, 2, 4),
        strides=(1, 2, 1, 1),
        norm_cfg=norm_cfg,
        norm_eval=False,
        style='pytorch',
        contract_dilation=True,
        init_cfg=None),
    decode_head=dict(
        type='DeepLabV2Head',
        in_channels=2048,
        in_index=3,
        channels=1024,
        dilations=(6, 12, 18, 24),
        dropout_ratio=0.5,
        num_classes=21,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0,
            avg_non_ignore=True),
        ignore_index=255),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
