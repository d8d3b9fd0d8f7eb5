# Any mmseg segmentor can be the unary net: the demo with mmseg's PSPNet
# (ResNetV1c-18, output stride 8) in place of DeepLab-v2, nothing else
# changed.
#   python tools/train.py configs/iaffinity/pspnet_r18_synthetic.py
_base_ = ['./synthetic_demo.py']

pspnet = dict(
    _delete_=True,
    type='EncoderDecoder',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone={{_base_.backbone}},
    decode_head=dict(
        type='PSPHead',
        in_channels=128,
        in_index=-1,
        channels=64,
        pool_scales=(1, 2, 3, 6),
        dropout_ratio=0.1,
        num_classes=None,
        norm_cfg=dict(type='BN', requires_grad=True),
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', loss_weight=1.0, avg_non_ignore=True)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
model = pspnet
train_cfg = dict(unary=dict(model=pspnet))
