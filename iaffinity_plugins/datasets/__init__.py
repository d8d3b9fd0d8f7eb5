"""datasets of iaffinity."""
from .voc_layout import VOCLayoutDataset  # noqa: F401
from .voc import PascalVOCWSSSDataset  # noqa: F401
from .coco import COCO2014WSSSDataset  # noqa: F401
from .synthetic import (SyntheticWSSSDataset,  # noqa: F401
                        make_synthetic_dataset)
from .photo_demo import PhotoDemoDataset, make_photo_demo  # noqa: F401
