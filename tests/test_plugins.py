"""The pluggy plugin manager: built-ins and an installed third-party plugin."""
import sys
import textwrap

import numpy as np
import pytest

from iaffinity_plugins import plugins


@pytest.fixture
def installed_plugin(tmp_path, monkeypatch):
    """A third-party package announcing itself in the 'iaffinity' group."""
    (tmp_path / 'grid_superpixels.py').write_text(textwrap.dedent('''
        import numpy as np
        import torch
        from iaffinity_plugins.plugins import hookimpl

        def grid(image, cell=4):
            rows = np.arange(image.shape[0])[:, None] // cell
            cols = np.arange(image.shape[1])[None, :] // cell
            return (rows * 1000 + cols).astype(np.int32)

        class GridRefiner(torch.nn.Module):
            pass

        @hookimpl
        def iaffinity_superpixel_methods():
            return {'grid': grid}

        @hookimpl
        def iaffinity_refiners():
            return {'GridRefiner': GridRefiner}
    '''))
    dist_info = tmp_path / 'grid_superpixels-0.1.dist-info'
    dist_info.mkdir()
    (dist_info / 'METADATA').write_text(
        'Metadata-Version: 2.1\nName: grid-superpixels\nVersion: 0.1\n')
    (dist_info / 'entry_points.txt').write_text(
        '[iaffinity]\ngrid = grid_superpixels\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    plugins.get_plugin_manager.cache_clear()
    yield
    plugins.get_plugin_manager.cache_clear()
    sys.modules.pop('grid_superpixels', None)


def test_builtin_extensions_are_registered():
    assert {'felzenszwalb', 'slic'} <= set(
        plugins.available_extensions('superpixel_method'))
    assert {'threshold', 'psa'} <= set(
        plugins.available_extensions('seed_generator'))
    assert 'majority' in plugins.available_extensions('miner')


def test_installed_plugin_is_selected_by_name(installed_plugin):
    grid = plugins.get_extension('superpixel_method', 'grid')
    superpixels = grid(np.zeros((8, 8, 3), np.uint8))
    assert len(np.unique(superpixels)) == 4

    from iaffinity_plugins.labels.superpixels import compute_superpixels
    via_config = compute_superpixels(np.zeros((8, 8, 3), np.uint8),
                                     method='grid', cell=2)
    assert len(np.unique(via_config)) == 16


def test_plugin_classes_become_buildable_by_type(installed_plugin):
    from iaffinity_plugins.registry import MODELS
    plugins.register_extension_classes()
    assert type(MODELS.build(dict(type='GridRefiner'))).__name__ == \
        'GridRefiner'


def test_unknown_names_are_reported_with_the_alternatives():
    with pytest.raises(KeyError, match="no miner named 'nope'.*majority"):
        plugins.get_extension('miner', 'nope')
    with pytest.raises(KeyError, match='unknown extension kind'):
        plugins.available_extensions('colour')
