# The paper's COCO setting (Table 9, 27.7 mIoU on val2014): VGG16 as on VOC,
# on COCO 2014 (81 classes). Run tools/convert_coco.py once per split first.
_base_ = ['./deeplab_vgg16_voc.py']

coco = dict(
    _delete_=True,
    type='COCO2014WSSSDataset',
    data_root='data/coco',
    data_prefix=dict(
        img_path='train2014', seg_map_path='SegmentationClass/train2014'),
    ann_file='ImageSets/Segmentation/train2014.txt',
    tags_file='ImageSets/Segmentation/train2014_tags.txt')
data_root = 'data/coco'
train_dataloader = dict(
    dataset=dict(coco, pipeline={{_base_.infer_pipeline}}))
val_dataloader = dict(
    dataset=dict(
        coco,
        data_prefix=dict(
            img_path='val2014', seg_map_path='SegmentationClass/val2014'),
        ann_file='ImageSets/Segmentation/val2014.txt',
        tags_file='ImageSets/Segmentation/val2014_tags.txt',
        pipeline={{_base_.test_pipeline}}))
test_dataloader = val_dataloader
