# The CAM classifier on mmseg's ResNetV1c-50 (output stride 16) instead of
# VGG16; otherwise as cam_vgg16_voc.py.
#   data/pretrained/resnet50_v1c.pth   mmseg ResNetV1c-50 ImageNet weights
_base_ = ['./cam_vgg16_voc.py']
model = dict(
    backbone=dict(
        _delete_=True,
        type='ResNetV1c',
        depth=50,
        out_indices=(3, ),
        dilations=(1, 1, 1, 2),
        strides=(1, 2, 2, 1),
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True,
        contract_dilation=True,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='data/pretrained/resnet50_v1c.pth')),
    in_channels=2048)
