# CAM classifier on DeepLab's VGG16 (pool5, 512 channels, output stride 8).
# ImageNet weights: as in deeplab_vgg16_largefov.py, leaf configs set the
# backbone's init_cfg to a local torchvision vgg16 state_dict.
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
    backbone=dict(type='VGG16LargeFOV', out_indices=(4, ), init_cfg=None),
    in_channels=512,
    num_classes=20,  # foreground classes K-1
    loss_cls=dict(type='MultiLabelSoftMarginLoss', loss_weight=1.0))
# Step 0 of the EM loop: CAMs over scales + flip, then the seed rule.
cam_cfg = dict(scales=(1.0, 0.5, 1.5, 2.0), flip=True)
seed_cfg = dict(type='threshold', fg_threshold=0.30, bg_threshold=0.05)
