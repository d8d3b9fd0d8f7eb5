"""segmentors of iaffinity."""
from .cam_classifier import CAMClassifier  # noqa: F401
from .region_classifier import RegionClassifier  # noqa: F401
from .spn_refiner import SPNRefiner  # noqa: F401
