"""Shared test fixtures: everything registers before mmseg is imported."""
import iaffinity_plugins.compat  # noqa: F401  (mmcv._ext stub first)
import pytest
import torch


@pytest.fixture(autouse=True)
def _deterministic_torch():
    """Same random init in every test; two threads like CI's machine."""
    torch.manual_seed(0)
    torch.set_num_threads(2)
    yield
