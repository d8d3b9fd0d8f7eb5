# DeepLab-LargeFOV (VGG16, output stride 8): the paper's unary network f_t.
# ImageNet weights: leaf configs set the backbone's init_cfg to a local
# torchvision vgg16 state_dict, e.g.
#   model = dict(backbone=dict(init_cfg=dict(
#       type='Pretrained', checkpoint='data/pretrained/vgg16-397923af.pth')))
# The base leaves it None because mmengine fails when a Pretrained path is
# missing, and no weights are downloaded at run time.
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
    backbone=dict(type='VGG16LargeFOV', out_indices=(4, ), init_cfg=None),
    decode_head=dict(
        type='DeepLabV2Head',
        in_channels=512,
        in_index=-1,
        channels=1024,
        dilations=(12, ),
        dropout_ratio=0.5,
        num_classes=21,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0,
            avg_non_ignore=True),
        ignore_index=255),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
