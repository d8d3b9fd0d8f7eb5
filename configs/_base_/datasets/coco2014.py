# COCO 2014 (81 classes): train on train2014, evaluate on val2014. Run
# tools/convert_coco.py once per split first (label PNGs, split and tags
# files). Override the folder for every split, e.g.
# --cfg-options train_dataloader.dataset.data_root=PATH
#   val_dataloader.dataset.data_root=PATH test_dataloader.dataset.data_root=PATH
_base_ = ['./wsss_pipelines_321.py']
dataset_type = 'COCO2014WSSSDataset'
data_root = 'data/coco'
train_dataloader = dict(
    batch_size=10,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(
            img_path='train2014', seg_map_path='SegmentationClass/train2014'),
        ann_file='ImageSets/Segmentation/train2014.txt',
        tags_file='ImageSets/Segmentation/train2014_tags.txt',
        pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(
            img_path='val2014', seg_map_path='SegmentationClass/val2014'),
        ann_file='ImageSets/Segmentation/val2014.txt',
        tags_file='ImageSets/Segmentation/val2014_tags.txt',
        pipeline={{_base_.test_pipeline}}))
test_dataloader = val_dataloader
