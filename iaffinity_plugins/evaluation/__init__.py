"""evaluation of iaffinity."""
from .label_metrics import (confusion_matrix, evaluate_label_dir,  # noqa: F401
                            label_quality)
from .energy import mean_energy, propagation_energy  # noqa: F401
