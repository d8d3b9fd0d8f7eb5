"""losses of iaffinity."""
from .affinity_loss import AffinityLoss  # noqa: F401
from .multilabel_loss import MultiLabelSoftMarginLoss  # noqa: F401
from .superpixel_smoothness_loss import SuperpixelSmoothnessLoss  # noqa: F401,E501
from .weighted_cross_entropy_loss import BackgroundWeightedCrossEntropyLoss  # noqa: F401,E501
