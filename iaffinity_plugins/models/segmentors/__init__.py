"""segmentors of iaffinity."""
from .affinity_refiner import AffinityRefiner  # noqa: F401
from .cam_classifier import CAMClassifier  # noqa: F401
from .frozen_unary import FrozenUnaryRefiner  # noqa: F401
from .region_classifier import RegionClassifier  # noqa: F401
from .spn_refiner import SPNRefiner  # noqa: F401
