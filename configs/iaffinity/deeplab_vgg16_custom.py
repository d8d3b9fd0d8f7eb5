# Your own images in VOC layout (docs/getting_started.md):
#   python tools/train.py configs/iaffinity/deeplab_vgg16_custom.py \
#       --cfg-options data_root=PATH
# PATH holds JPEGImages/, ImageSets/Segmentation/{train,val}.txt,
# classes.txt (background first) and optionally tags.txt and
# SegmentationClass/ (masks, used only for evaluation and for tags when
# tags.txt is absent). Classes and image sizes come from the data.
_base_ = ['./deeplab_vgg16_voc.py']

data_root = 'data/custom'
custom = dict(
    _delete_=True,
    type='VOCLayoutDataset',
    data_root=data_root,
    classes_file='classes.txt',
    tags_file='tags.txt')
train_dataloader = dict(
    dataset=dict(
        custom,
        ann_file='ImageSets/Segmentation/train.txt',
        pipeline={{_base_.infer_pipeline}}))
val_dataloader = dict(
    dataset=dict(
        custom,
        ann_file='ImageSets/Segmentation/val.txt',
        pipeline={{_base_.test_pipeline}}))
test_dataloader = val_dataloader
