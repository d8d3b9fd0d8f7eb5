# Pipelines shared by the real-image data sets (VOC, COCO, custom folders):
# 321 x 321 crops as DeepLab-LargeFOV. Used as {{_base_.train_pipeline}} etc.
crop_size = (321, 321)
train_pipeline = [
    dict(type='LoadImageWithCheck'),
    dict(type='LoadAnnotationsWithCheck'),
    # Short edge resized to 321..642 (keep_ratio fits inside (w, h) = scale
    # x ratio): every crop is full size, so no padding is needed (mmcv's Pad
    # would not pad gt_superpixels).
    dict(
        type='RandomResize',
        scale=(2048, 428),
        ratio_range=(0.75, 1.5),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackWSSSInputs')
]
test_pipeline = [
    dict(type='LoadImageWithCheck'),
    dict(type='LoadAnnotationsWithCheck'),
    dict(type='PackWSSSInputs')
]
# Label making (seeds, refinement): images only, no labels needed.
infer_pipeline = [dict(type='LoadImageWithCheck'), dict(type='PackWSSSInputs')]
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
