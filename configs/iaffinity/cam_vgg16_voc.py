# Step 0 alone: the CAM classifier on VOC train_aug image tags, then seeds.
#   python tools/train.py configs/iaffinity/cam_vgg16_voc.py
#   python tools/make_seeds.py configs/iaffinity/cam_vgg16_voc.py \
#       work_dirs/cam_vgg16_voc/iter_8000.pth --out work_dirs/seeds
#   python tools/eval_labels.py work_dirs/seeds \
#       --dataset-config configs/iaffinity/cam_vgg16_voc.py
_base_ = [
    '../_base_/models/cam_vgg16.py', '../_base_/datasets/voc12_aug.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_cam.py'
]
crop_size = (321, 321)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        init_cfg=dict(
            _delete_=True,
            type='Pretrained',
            checkpoint='data/pretrained/vgg16_torchvision.pth')))
# Image tags only: no label maps are loaded. Colour jitter as in PSA's
# classifier training (ColorJitter), which the paper's CAM follows.
cam_pipeline = [
    dict(type='LoadImageWithCheck'),
    dict(type='RandomResize', scale=(2048, 428), ratio_range=(0.75, 1.5),
         keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackWSSSInputs')
]
train_dataloader = dict(batch_size=8, dataset=dict(pipeline=cam_pipeline))
val_dataloader = None
val_evaluator = None
test_dataloader = None
test_evaluator = None
default_hooks = dict(visualization=None)
