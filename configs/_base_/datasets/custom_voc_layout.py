# Any folder in VOC layout with classes.txt and an optional tags.txt (see
# docs/datasets.md, "Your own data"). Override the folder for every split,
# e.g. --cfg-options train_dataloader.dataset.data_root=PATH
#   val_dataloader.dataset.data_root=PATH test_dataloader.dataset.data_root=PATH
_base_ = ['./wsss_pipelines_321.py']
dataset_type = 'VOCLayoutDataset'
data_root = 'data/custom'
train_dataloader = dict(
    batch_size=10,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='ImageSets/Segmentation/train.txt',
        classes_file='classes.txt',
        tags_file=None,  # 'tags.txt' if you have one; else tags from masks
        pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='ImageSets/Segmentation/val.txt',
        classes_file='classes.txt',
        pipeline={{_base_.test_pipeline}}))
test_dataloader = val_dataloader
