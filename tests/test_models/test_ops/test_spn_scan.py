"""Tests of the SPN linear scan op against a naive per-pixel reference."""
import pytest
import torch

import iaffinity_plugins.compat  # noqa: F401
from iaffinity_plugins.models.ops.spn_scan import (DIRECTIONS,
                                                   GATE_OFFSETS,
                                                   gate_affinity,
                                                   neighbour_confidence,
                                                   normalize_gates,
                                                   spn_propagate, spn_scan)

# (step along the scan, offset of neighbour k = 1, 2, 3) per direction, in
# (row, col) terms: the previous pixel of (i, j) for neighbour k is
# (i, j) - step + (k - 2) * ortho.
_GEOMETRY = {
    'left_to_right': ((0, 1), (1, 0)),
    'right_to_left': ((0, -1), (1, 0)),
    'top_to_bottom': ((1, 0), (0, 1)),
    'bottom_to_top': ((-1, 0), (0, 1)),
}


def naive_scan(x, g1, g2, g3, direction):
    """Plain Python loops over pixels in scan order; h = 0 outside."""
    n, c, height, width = x.shape
    groups = g1.shape[1]
    (si, sj), (oi, oj) = _GEOMETRY[direction]
    rows = range(height) if si >= 0 else range(height - 1, -1, -1)
    cols = range(width) if sj >= 0 else range(width - 1, -1, -1)
    # visit order: the scan axis outermost
    order = ([(i, j) for j in cols for i in rows] if sj else
             [(i, j) for i in rows for j in cols])
    h = {}  # (b, ch, i, j) -> scalar; no in-place writes, so autograd works
    for b in range(n):
        for ch in range(c):
            grp = ch // (c // groups)
            for i, j in order:
                gates = [g[b, grp, i, j] for g in (g1, g2, g3)]
                val = (1 - sum(gates)) * x[b, ch, i, j]
                for k, gk in enumerate(gates):
                    pi, pj = i - si + (k - 1) * oi, j - sj + (k - 1) * oj
                    if 0 <= pi < height and 0 <= pj < width:
                        val = val + gk * h[b, ch, pi, pj]
                h[b, ch, i, j] = val
    return torch.stack([h[key] for key in sorted(h)]).view_as(x)


def random_gates(shape, generator, dtype=torch.float32):
    g = torch.rand((3, ) + shape, generator=generator, dtype=dtype) - 0.3
    return normalize_gates(*g)


@pytest.mark.parametrize('direction', DIRECTIONS)
@pytest.mark.parametrize('groups', [3, 1])
def test_forward_matches_naive(direction, groups):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 4, 5, generator=gen)
    g1, g2, g3 = random_gates((2, groups, 4, 5), gen)
    out = spn_scan(x, g1, g2, g3, direction)
    torch.testing.assert_close(out, naive_scan(x, g1, g2, g3, direction))


def test_first_column_and_edges_hand_computed():
    # 1 x 1 x 2 x 2, left-to-right: the first column is (1 - sum g) x; the
    # second column sees only the neighbours that are inside the image.
    x = torch.tensor([[[[1., 2.], [3., 4.]]]])
    g1 = torch.full_like(x, 0.1)
    g2 = torch.full_like(x, 0.2)
    g3 = torch.full_like(x, 0.3)
    h = spn_scan(x, g1, g2, g3)
    h00, h10 = 0.4 * 1, 0.4 * 3
    h01 = 0.4 * 2 + 0.2 * h00 + 0.3 * h10  # no row above
    h11 = 0.4 * 4 + 0.1 * h00 + 0.2 * h10  # no row below
    expected = torch.tensor([[[[h00, h01], [h10, h11]]]])
    torch.testing.assert_close(h, expected)


def test_non_contiguous_inputs():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(1, 5, 4, 2, generator=gen).transpose(1, 3)  # (1,2,4,5)
    # (1, 2, 4, 5) transposed views, plus a channel slice of x's gates
    g = [t.transpose(2, 3) for t in random_gates((1, 2, 5, 4), gen)]
    assert not x.is_contiguous() and not g[0].is_contiguous()
    for direction in DIRECTIONS:
        torch.testing.assert_close(
            spn_scan(x, *g, direction),
            naive_scan(x.contiguous(), *[t.contiguous() for t in g],
                       direction))


@pytest.mark.parametrize('direction', DIRECTIONS)
@pytest.mark.parametrize('groups', [4, 2])
def test_gradcheck_every_direction(direction, groups):
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(2, 4, 3, 4, generator=gen, dtype=torch.float64)
    gates = [g.detach() for g in random_gates((2, groups, 3, 4), gen,
                                              torch.float64)]
    inputs = [t.requires_grad_() for t in (x, *gates)]
    assert torch.autograd.gradcheck(
        lambda *a: spn_scan(*a, direction=direction), inputs)


def test_gradient_matches_autograd_of_naive():
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(1, 2, 3, 3, generator=gen, dtype=torch.float64,
                    requires_grad=True)
    gates = [g.detach().requires_grad_() for g in random_gates(
        (1, 2, 3, 3), gen, torch.float64)]
    weight = torch.randn(1, 2, 3, 3, generator=gen, dtype=torch.float64)
    for direction in DIRECTIONS:
        fast = torch.autograd.grad(
            (spn_scan(x, *gates, direction) * weight).sum(), [x, *gates])
        ref = torch.autograd.grad(
            (naive_scan(x, *gates, direction) * weight).sum(), [x, *gates])
        for a, b in zip(fast, ref):
            torch.testing.assert_close(a, b)


def test_normalize_gates():
    g1 = torch.tensor([0.5, 0.0, -2.0, 0.1])
    g2 = torch.tensor([0.5, 0.0, 1.0, 0.2])
    g3 = torch.tensor([0.5, 0.0, 1.0, 0.3])
    n1, n2, n3 = normalize_gates(g1, g2, g3)
    torch.testing.assert_close(n1, torch.tensor([0.5 / 1.5, 0., -0.5, 0.1]))
    torch.testing.assert_close(n3, torch.tensor([0.5 / 1.5, 0., 0.25, 0.3]))
    total = n1.abs() + n2.abs() + n3.abs()
    assert (total <= 1 + 1e-6).all()
    # all-zero gates: no NaN in value or gradient
    zeros = [torch.zeros(3, dtype=torch.float64, requires_grad=True)
             for _ in range(3)]
    out = normalize_gates(*zeros)
    grads = torch.autograd.grad(sum(o.sum() for o in out), zeros)
    assert all(torch.isfinite(g).all() for g in grads)


def test_normalize_gates_gradcheck():
    gen = torch.Generator().manual_seed(4)
    # keep away from the kinks |g| = 0 and sum |g| = 1
    g = (torch.rand(3, 6, generator=gen, dtype=torch.float64) + 0.2) * \
        torch.tensor([1., -1., 1., 1., -1., 1.], dtype=torch.float64)
    g[:, :3] *= 0.2  # sum < 1: identity branch
    assert torch.autograd.gradcheck(normalize_gates,
                                    [t.requires_grad_() for t in g.clone()])


@pytest.mark.parametrize('direction', DIRECTIONS)
@pytest.mark.parametrize('k', [0, 1, 2])
def test_gate_offsets_name_the_neighbour_each_gate_weighs(direction, k):
    """A single gate of 1 at the centre (all others 0): the scan copies
    there the state of the pixel at that gate's offset, which is its x."""
    x = torch.randn(1, 1, 3, 3)
    gates = [torch.zeros(1, 1, 3, 3) for _ in range(3)]
    gates[k][0, 0, 1, 1] = 1.0
    dy, dx = GATE_OFFSETS[DIRECTIONS.index(direction) * 3 + k]
    h = spn_scan(x, *gates, direction)
    assert h[0, 0, 1, 1] == x[0, 0, 1 + dy, 1 + dx]


def test_gate_affinity_layout_and_range():
    # channel (d * 3 + k) * G + group, G = 2
    gates = torch.arange(2 * 24 * 2, dtype=torch.float32).view(2, 24, 1, 2)
    gates = (gates - 40) / 20
    affinity = gate_affinity(gates)
    assert affinity.shape == (4, 12, 1, 2)
    for n in range(2):
        for group in range(2):
            for channel in range(12):
                torch.testing.assert_close(
                    affinity[n * 2 + group, channel],
                    gates[n, channel * 2 + group].clamp(0, 1))
    assert affinity.min() == 0 and affinity.max() == 1
    with pytest.raises(ValueError, match='12'):
        gate_affinity(torch.zeros(1, 11, 2, 2))


def reference_propagate(x, gates, merge):
    n, _, height, width = x.shape
    groups = gates.shape[1] // 12
    g = gates.view(n, 4, 3, groups, height, width)
    outs = []
    for d, direction in enumerate(DIRECTIONS):
        g1, g2, g3 = normalize_gates(g[:, d, 0], g[:, d, 1], g[:, d, 2])
        outs.append(naive_scan(x, g1, g2, g3, direction))
    stacked = torch.stack(outs)
    return stacked.amax(0) if merge == 'max' else stacked.mean(0)


@pytest.mark.parametrize('merge', ['max', 'mean'])
@pytest.mark.parametrize('size', [(3, 3), (3, 4)])  # batched 4-way and 2+2
def test_propagate_matches_reference(merge, size):
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(2, 4, *size, generator=gen)
    gates = torch.randn(2, 24, *size, generator=gen)  # 2 groups, unnormalised
    torch.testing.assert_close(spn_propagate(x, gates, merge),
                               reference_propagate(x, gates, merge))


@pytest.mark.parametrize('size', [(3, 3), (2, 4)])
def test_propagate_gradcheck_max_merge(size):
    gen = torch.Generator().manual_seed(8)  # a seed without near-ties
    x = torch.randn(1, 2, *size, generator=gen, dtype=torch.float64)
    # raw gates with sum |g| > 1 for half the pixels: both normalisation
    # branches, away from the kinks
    gates = (torch.rand(1, 12, *size, generator=gen, dtype=torch.float64)
             * 0.5 + 0.05)
    gates[..., ::2] *= 3
    # mixed signs: positive gates normalised to sum exactly 1 would zero the
    # (1 - sum g) x term and tie directions at 0
    gates *= torch.randint(0, 2, gates.shape, generator=gen) * 2 - 1
    # the max merge is differentiable only without ties between directions:
    # make sure the best two directions are apart at every element
    g = gates.view(1, 4, 3, 1, *size)
    per_direction = torch.stack([
        spn_scan(x, *normalize_gates(*g[:, d].unbind(1)), direction)
        for d, direction in enumerate(DIRECTIONS)])
    top2 = per_direction.topk(2, dim=0).values
    assert (top2[0] - top2[1]).min() > 1e-4
    assert torch.autograd.gradcheck(
        spn_propagate, [x.requires_grad_(), gates.requires_grad_()])


def test_zero_gates_are_identity():
    x = torch.randn(2, 3, 5, 4)
    torch.testing.assert_close(spn_propagate(x, torch.zeros(2, 12, 5, 4)), x)


@pytest.mark.parametrize('bad', [
    dict(x=(1, 3, 4, 4), gates=(1, 11, 4, 4)),  # not 12 * G
    dict(x=(1, 3, 4, 4), gates=(1, 24, 4, 4)),  # C not divisible by G
    dict(x=(1, 2, 4, 4), gates=(1, 12, 4, 5)),  # size mismatch
    dict(x=(2, 4, 4), gates=(2, 12, 4, 4)),  # not 4-D
])
def test_bad_shapes_raise(bad):
    with pytest.raises(ValueError, match='spn'):
        spn_propagate(torch.zeros(bad['x']), torch.zeros(bad['gates']))


def test_bad_direction_raises():
    x = torch.zeros(1, 1, 2, 2)
    with pytest.raises(ValueError, match='direction'):
        spn_scan(x, x, x, x, 'diagonal')


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a GPU')
def test_cuda_matches_cpu():
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(2, 4, 6, 7, generator=gen, dtype=torch.float64)
    gates = torch.randn(2, 24, 6, 7, generator=gen, dtype=torch.float64)
    cpu = spn_propagate(x.requires_grad_(), gates.requires_grad_())
    cpu_grads = torch.autograd.grad(cpu.sum(), [x, gates])
    xc, gc = (t.detach().cuda().requires_grad_() for t in (x, gates))
    gpu = spn_propagate(xc, gc)
    gpu_grads = torch.autograd.grad(gpu.sum(), [xc, gc])
    torch.testing.assert_close(gpu.cpu(), cpu)
    for a, b in zip(gpu_grads, cpu_grads):
        torch.testing.assert_close(a.cpu(), b)
    assert torch.autograd.gradcheck(spn_propagate, [xc, gc])


def test_neighbour_confidence_reads_each_gates_neighbour():
    gen = torch.Generator().manual_seed(3)
    confidence = torch.rand(2, 1, 4, 5, generator=gen)
    read = neighbour_confidence(confidence)
    assert read.shape == (2, 12, 4, 5)
    for channel, (dy, dx) in enumerate(GATE_OFFSETS):
        for i in range(4):
            for j in range(5):
                inside = 0 <= i + dy < 4 and 0 <= j + dx < 5
                expected = (confidence[:, 0, i + dy, j + dx] if inside else
                            torch.ones(2))
                torch.testing.assert_close(read[:, channel, i, j], expected)


def reference_confident_propagate(x, gates, confidence, merge):
    """Normalised gates, each multiplied by its neighbour's confidence (a
    neighbour outside the image keeps its gate), through the naive scan."""
    n, _, height, width = x.shape
    groups = gates.shape[1] // 12
    g = gates.view(n, 4, 3, groups, height, width)
    outs = []
    for d, direction in enumerate(DIRECTIONS):
        weighted = []
        for k, gk in enumerate(normalize_gates(*g[:, d].unbind(1))):
            dy, dx = GATE_OFFSETS[d * 3 + k]
            weight = torch.ones(n, 1, height, width, dtype=x.dtype)
            for i in range(height):
                for j in range(width):
                    if 0 <= i + dy < height and 0 <= j + dx < width:
                        weight[:, 0, i, j] = confidence[:, 0, i + dy, j + dx]
            weighted.append(gk * weight)
        outs.append(naive_scan(x, *weighted, direction))
    stacked = torch.stack(outs)
    return stacked.amax(0) if merge == 'max' else stacked.mean(0)


@pytest.mark.parametrize('merge', ['max', 'mean'])
@pytest.mark.parametrize('size', [(3, 3), (3, 4)])
def test_confidence_weighted_propagate_matches_reference(merge, size):
    gen = torch.Generator().manual_seed(11)
    x = torch.randn(2, 4, *size, generator=gen)
    gates = torch.randn(2, 24, *size, generator=gen)
    confidence = torch.rand(2, 1, *size, generator=gen)
    torch.testing.assert_close(
        spn_propagate(x, gates, merge, confidence),
        reference_confident_propagate(x, gates, confidence, merge))
    # full confidence everywhere is the unweighted propagation
    torch.testing.assert_close(
        spn_propagate(x, gates, merge, torch.ones(2, 1, *size)),
        spn_propagate(x, gates, merge))


def test_confidence_weighted_propagate_gradcheck():
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(1, 2, 3, 4, generator=gen, dtype=torch.float64)
    gates = torch.randn(1, 12, 3, 4, generator=gen, dtype=torch.float64)
    confidence = torch.rand(1, 1, 3, 4, generator=gen, dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda *t: spn_propagate(*t[:2], 'mean', t[2]),
        [x.requires_grad_(), gates.requires_grad_(),
         confidence.requires_grad_()])


def test_confidence_scales_each_link_by_the_neighbour_it_reads():
    # One row, only the left-to-right scan linked (same-row gate 1 from
    # column 1 on); the other three scans return x, merged by the mean.
    x = torch.tensor([1.0, 0, 0, 0, 0]).view(1, 1, 1, 5)
    gates = torch.zeros(1, 12, 1, 5)
    gates[0, 1, 0, 1:] = 1.0
    confidence = torch.tensor([1.0, 0.5, 0.5, 0.5, 0.5]).view(1, 1, 1, 5)
    # plain: column 0 is copied along the row; weighted: column 1 reads the
    # confident column 0 in full, each later link is halved and the
    # pixel's own (zero) value takes the other half
    plain = torch.tensor([1.0, 1, 1, 1, 1])
    weighted = torch.tensor([1.0, 1, 0.5, 0.25, 0.125])
    for conf, scanned in ((None, plain), (confidence, weighted)):
        torch.testing.assert_close(
            spn_propagate(x, gates, 'mean', conf).view(5),
            (scanned + 3 * x.view(5)) / 4)


def test_bad_confidence_shape_raises():
    with pytest.raises(ValueError, match='confidence'):
        spn_propagate(torch.zeros(1, 2, 3, 3), torch.zeros(1, 12, 3, 3),
                      'mean', torch.ones(1, 2, 3, 3))
