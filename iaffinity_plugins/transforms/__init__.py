"""transforms of iaffinity."""
from .loading import LoadSuperpixels  # noqa: F401
from .formatting import PackWSSSInputs  # noqa: F401
from .image_loading import (LoadAnnotationsWithCheck,  # noqa: F401
                            LoadImageWithCheck)
