"""losses of iaffinity."""
from .multilabel_loss import MultiLabelSoftMarginLoss  # noqa: F401
from .superpixel_smoothness_loss import SuperpixelSmoothnessLoss  # noqa: F401,E501
