"""The paper's core claim on controlled data (Table 5): an SPN head trained
on imperfect labels refines a coarse unary prediction towards the truth.

Images come from the synthetic generator (shapes whose plain parts are only
linked by colour continuity). The unary input is the ground truth seen at
stride 16, bilinearly upsampled and softened: right classes, blobby edges,
like a DeepLab output. The labels hide 30 % of the image in unknown 8x8
blocks. The head is trained on 128 images and judged on 32 others.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from iaffinity_plugins.datasets.synthetic import render_synthetic_image
from iaffinity_plugins.evaluation.label_metrics import (confusion_matrix,
                                                        label_quality)
from iaffinity_plugins.models.heads.spn_head import SPNHead

NUM_CLASSES = 4  # background + 3
SIZE = 64


def _data(num_images: int, seed: int):
    """Images (N, 3, S, S), ground truth, coarse unary probs, labels."""
    rng = np.random.default_rng(seed)
    images, masks = zip(*(render_synthetic_image(rng, SIZE, SIZE,
                                                 NUM_CLASSES - 1, 2)
                          for _ in range(num_images)))
    images = (torch.tensor(np.stack(images)).permute(0, 3, 1, 2).float() -
              128) / 64
    truth = torch.tensor(np.stack(masks)).long()
    onehot = F.one_hot(truth, NUM_CLASSES).permute(0, 3, 1, 2).float()
    coarse = F.interpolate(F.interpolate(onehot, scale_factor=1 / 16,
                                         mode='area'),
                           size=(SIZE, SIZE), mode='bilinear',
                           align_corners=False)
    unary = 0.8 * coarse + 0.2 / NUM_CLASSES
    hidden = torch.rand(num_images, 1, SIZE // 8, SIZE // 8,
                        generator=torch.Generator().manual_seed(seed)) < 0.3
    labels = truth.clone()
    labels[F.interpolate(hidden.float(), size=(SIZE, SIZE))[:, 0] > 0] = 255
    return images, truth, unary, labels


def _miou(pred: torch.Tensor, truth: torch.Tensor) -> float:
    confusion = sum(
        confusion_matrix(p.numpy().astype(np.uint8),
                         t.numpy().astype(np.uint8), NUM_CLASSES)
        for p, t in zip(pred, truth))
    return label_quality(confusion)['miou']


@pytest.fixture
def one_thread():
    """Tiny convolutions run fastest on one thread, even with two cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _refine_gain(seed: int) -> tuple:
    """Train a head on data seed ``seed``; held-out (unary, refined) mIoU."""
    torch.manual_seed(seed)  # head init and batches: independent of order
    images, truth, unary, labels = _data(160, seed=seed)
    train, held_out = slice(0, 128), slice(128, 160)
    head = SPNHead(num_classes=NUM_CLASSES, propagation_channels=None,
                   output='normalized', merge='mean', channels=(8, 16, 32))
    head.init_weights()
    optimizer = torch.optim.AdamW(head.parameters(), lr=3e-3)
    for _ in range(400):
        batch = torch.randint(0, 128, (8, ))
        logits, _ = head(images[train][batch], unary[train][batch])
        loss = F.cross_entropy(logits, labels[train][batch], ignore_index=255)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    head.eval()
    with torch.no_grad():
        refined = head(images[held_out], unary[held_out])[0].argmax(1)
    return (_miou(unary[held_out].argmax(1), truth[held_out]),
            _miou(refined, truth[held_out]))


def test_trained_spn_head_beats_its_coarse_unary_input(one_thread):
    """Training is chaotic: CPUs with other kernels (or thread counts) end
    elsewhere, so the bound is on the mean over three data seeds, set well
    inside the measured spread (docs/benchmarks.md, "Training-outcome
    tests"): single-run gains 8.4 to 22.7 over seeds 0-5 x {1 thread AVX512,
    1 thread AVX2, 1 thread no vector kernels, 2 threads}; the mean over
    seeds 1-3 was 19.3 to 20.8 in each of those settings."""
    results = [_refine_gain(seed) for seed in (1, 2, 3)]
    gains = [refined - unary for unary, refined in results]
    assert min(gains) > 0, results
    assert np.mean(gains) > 8, results
