# The paper's ResNet setting (Table 2, 64.3 mIoU on VOC val): the unary net is
# DeepLab-v2 ASPP-L on mmseg's ResNetV1c-101 (output stride 8); everything
# else as in deeplab_vgg16_voc.py.
#   data/pretrained/resnet101_v1c.pth   mmseg ResNetV1c-101 ImageNet weights
_base_ = ['./deeplab_vgg16_voc.py']

resnet101_unary = dict(
    _delete_=True,
    type='EncoderDecoder',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(
        type='ResNetV1c',
        depth=101,
        out_indices=(3, ),
        dilations=(1, 1, 2, 4),
        strides=(1, 2, 1, 1),
        norm_cfg=dict(type='SyncBN', requires_grad=True),
        contract_dilation=True,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='data/pretrained/resnet101_v1c.pth')),
    decode_head=dict(
        type='DeepLabV2Head',  # ASPP-L: four summed branches
        in_channels=2048,
        in_index=-1,
        channels=1024,
        dilations=(6, 12, 18, 24),
        dropout_ratio=0.5,
        num_classes=None,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', loss_weight=1.0, avg_non_ignore=True),
        ignore_index=255),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
model = resnet101_unary
train_cfg = dict(unary=dict(model=resnet101_unary))
