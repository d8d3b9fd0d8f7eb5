"""Fixtures of the data set tests."""
import pytest
from mmengine.registry import DefaultScope


@pytest.fixture
def mmseg_scope():
    """Pipelines build from mmseg's registry, as under a Runner."""
    with DefaultScope.overwrite_default_scope('mmseg'):
        yield
