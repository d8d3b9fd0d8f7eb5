"""Spatial propagation (SPN, Liu et al. 2017): the three-way linear scan.

Shape shorthand: N batch, C channels, G gate groups (C divisible by G;
channel c uses the gates of group c // (C // G)), H x W image. Inside the op
the *scan layout* is (L, B, C, M): L the scan axis, B independent scans,
M the axis orthogonal to the scan.

One left-to-right scan computes, for every row i and column j::

    h[:, :, i, j] = (1 - g1 - g2 - g3) * x[:, :, i, j]
                    + g1 * h[:, :, i - 1, j - 1]
                    + g2 * h[:, :, i, j - 1]
                    + g3 * h[:, :, i + 1, j - 1]

with h = 0 outside the image: the first column is (1 - g1 - g2 - g3) * x,
and a neighbour above the top row or below the bottom row contributes
nothing (its gate still enters the 1 - sum g term). The other directions run
the same recurrence on flipped/transposed views; for every direction the
neighbour k = 1, 2, 3 of the previous step sits at offset -1, 0, +1 along the
orthogonal axis (rows for horizontal scans, columns for vertical ones).

The op is a ``torch.autograd.Function``: the forward loops over the scan
axis only, with three fused in-place ``addcmul_`` per step into one
preallocated output; the backward is the reverse (adjoint) scan, so no
autograd graph of L steps is kept and memory stays O(N C H W). Only the
inputs and the output are saved.

Each gate links a pixel to one neighbour (:data:`GATE_OFFSETS`);
:func:`gate_affinity` reads the gates as pair affinities in [0, 1], for
PSA's affinity loss on them, and :func:`neighbour_confidence` reads a
per-pixel confidence at those neighbours, for NLSPN's confidence-weighted
propagation (``spn_propagate(..., confidence=c)``).
"""
from typing import Iterable, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

DIRECTIONS = ('left_to_right', 'right_to_left', 'top_to_bottom',
              'bottom_to_top')
NUM_NEIGHBOURS = 3
NUM_GATE_MAPS = len(DIRECTIONS) * NUM_NEIGHBOURS  # 12 per gate group
# (dy, dx) from a pixel to the neighbour whose propagated state h its gate
# d * 3 + k weighs: the previous column (horizontal scans) or row (vertical
# ones) at orthogonal offset k - 1, directions in the order of DIRECTIONS.
GATE_OFFSETS: Tuple[Tuple[int, int], ...] = tuple(
    [(k, -1) for k in (-1, 0, 1)] + [(k, 1) for k in (-1, 0, 1)] +
    [(-1, k) for k in (-1, 0, 1)] + [(1, k) for k in (-1, 0, 1)])


def _grouped(t: Tensor, groups: int) -> Tensor:
    """(L, B, C, M) -> (L, B, G, C // G, M) view (a copy only if needed)."""
    length, batch, channels, width = t.shape
    return t.reshape(length, batch, groups, channels // groups, width)


def _sum_group(t: Tensor) -> Tensor:
    """Reduce the channels of one group: (..., G, C // G, M) -> (..., G, M)."""
    return t.sum(-2)


class _LinearScan(torch.autograd.Function):
    """Forward scan along axis 0 of the scan layout, reverse-scan backward.

    Inputs: x (L, B, C, M) and gates (L, B, 3, G, M), both contiguous.
    Output: h (L, B, C, M).
    """

    @staticmethod
    def forward(ctx, x: Tensor, gates: Tensor) -> Tensor:
        groups = gates.shape[3]
        xg = _grouped(x, groups)
        # (L, B, 3, G, 1, M): the singleton broadcasts over a group's channels
        # without materialising per-channel copies of the gates.
        g = gates.unsqueeze(-2)
        h = xg * (1 - g.sum(2))  # the (1 - sum g) x term of every step
        g1, g2, g3 = g.unbind(2)
        # Views prepared once: per step the loop only indexes lists, since
        # the op is bound by per-step overhead, not by arithmetic.
        h_all, h_lo, h_hi = h.unbind(0), h[..., :-1].unbind(0), \
            h[..., 1:].unbind(0)
        g2s, g1s, g3s = g2.unbind(0), g1[..., 1:].unbind(0), \
            g3[..., :-1].unbind(0)
        for j in range(1, h.shape[0]):
            h_all[j].addcmul_(g2s[j], h_all[j - 1])
            h_hi[j].addcmul_(g1s[j], h_lo[j - 1])  # row i from row i - 1
            h_lo[j].addcmul_(g3s[j], h_hi[j - 1])  # row i from row i + 1
        ctx.save_for_backward(x, gates, h)
        return h.view_as(x)

    @staticmethod
    def backward(ctx, grad_h: Tensor) -> Tuple[Tensor, Tensor]:
        x, gates, h = ctx.saved_tensors
        groups = gates.shape[3]
        g = gates.unsqueeze(-2)
        g1, g2, g3 = g.unbind(2)
        # lam = dLoss/dh including every later step (the adjoint state),
        # accumulated by the transposed recurrence from the last step back.
        # One contiguous copy: grad_h may be a strided view, and lam is
        # updated in place.
        lam = _grouped(torch.empty_like(x).copy_(grad_h), groups)
        lam_all, lam_lo, lam_hi = lam.unbind(0), lam[..., :-1].unbind(0), \
            lam[..., 1:].unbind(0)
        g2s, g1s, g3s = g2.unbind(0), g1[..., 1:].unbind(0), \
            g3[..., :-1].unbind(0)
        for j in range(h.shape[0] - 1, 0, -1):
            lam_all[j - 1].addcmul_(g2s[j], lam_all[j])
            lam_lo[j - 1].addcmul_(g1s[j], lam_hi[j])
            lam_hi[j - 1].addcmul_(g3s[j], lam_lo[j])

        grad_x = grad_gates = None
        if ctx.needs_input_grad[0]:
            grad_x = (lam * (1 - g.sum(2))).view_as(x)
        if ctx.needs_input_grad[1]:
            # d h_j / d g_k = h_{j-1}(neighbour k) - x_j; h_{-1} = 0, so the
            # first step only has the -x part.
            lam_x = _sum_group(lam * _grouped(x, groups))
            grad_gates = -lam_x.unsqueeze(2).repeat(1, 1, NUM_NEIGHBOURS, 1, 1)
            nxt, prev = lam[1:], h[:-1]
            grad_gates[1:, :, 0, :, 1:] += _sum_group(
                nxt[..., 1:] * prev[..., :-1])
            grad_gates[1:, :, 1] += _sum_group(nxt * prev)
            grad_gates[1:, :, 2, :, :-1] += _sum_group(
                nxt[..., :-1] * prev[..., 1:])
        return grad_x, grad_gates


def _to_scan_layout(t: Tensor, direction: str) -> Tensor:
    """(N, ..., H, W) -> (L, N, ..., M) view, scan order along axis 0."""
    if direction in ('left_to_right', 'right_to_left'):
        t = t.movedim(-1, 0)
    else:
        t = t.movedim(-2, 0)
    return t.flip(0) if direction in ('right_to_left', 'bottom_to_top') else t


def _from_scan_layout(t: Tensor, direction: str) -> Tensor:
    """Inverse of :func:`_to_scan_layout` for (L, N, C, M) tensors."""
    if direction in ('right_to_left', 'bottom_to_top'):
        t = t.flip(0)
    horizontal = direction in ('left_to_right', 'right_to_left')
    return t.movedim(0, -1 if horizontal else -2)


def _check_inputs(x: Tensor, gates: Tensor, gate_maps: int) -> int:
    """Validate x (N, C, H, W) against gates (N, gate_maps * G, H, W)."""
    if x.dim() != 4 or gates.dim() != 4:
        raise ValueError('spn: x and gates must be 4-D (N, C, H, W), got '
                         f'{tuple(x.shape)} and {tuple(gates.shape)}')
    n, c, height, width = x.shape
    groups, rest = divmod(gates.shape[1], gate_maps)
    if (rest or groups == 0 or c % groups or gates.shape[0] != n
            or gates.shape[2:] != x.shape[2:]):
        raise ValueError(
            f'spn: gates {tuple(gates.shape)} do not fit x {tuple(x.shape)}: '
            f'expected (N, {gate_maps} * G, H, W) with C divisible by G')
    return groups


def _normalize_neighbours(g: Tensor, dim: int) -> Tensor:
    """SPN stability rule: scale the 3 gates so that sum |g_k| <= 1."""
    total = g.abs().sum(dim, keepdim=True)
    # clamp_min(1) leaves gates with sum |g| <= 1 untouched and divides the
    # others by their sum; the denominator is never below 1, so all-zero
    # gates give no NaN and the gradient stays finite (abs'(0) = 0).
    return g / total.clamp_min(1.0)


def normalize_gates(g1: Tensor, g2: Tensor,
                    g3: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """SPN gate normalisation: g_k / sum |g| where sum |g| > 1, else g_k.

    Args:
        g1, g2, g3 (Tensor): gates of the three neighbours, same shape.

    Returns:
        tuple[Tensor]: the normalised gates, same shapes.
    """
    return tuple(_normalize_neighbours(torch.stack((g1, g2, g3)), 0).unbind(0))


def gate_affinity(gates: Tensor) -> Tensor:
    """The affinity in [0, 1] of each gate's pixel pair (:data:`GATE_OFFSETS`).

    Args:
        gates (Tensor): (N, 12 * G, h, w) raw gates (:func:`spn_propagate`'s
            layout).

    Returns:
        Tensor: (N * G, 12, h, w), image n's group g at row ``n * G + g``;
        channel ``d * 3 + k`` is the affinity of pixel i and
        ``i + GATE_OFFSETS[d * 3 + k]``.
    """
    n, maps, height, width = gates.shape
    if maps % NUM_GATE_MAPS:
        raise ValueError(f'gate_affinity: expected (N, {NUM_GATE_MAPS} * G, '
                         f'h, w) gates, got {tuple(gates.shape)}')
    per_group = gates.view(n, NUM_GATE_MAPS, -1, height, width).transpose(1, 2)
    # The raw gate z_k itself, clamped: the scan weighs neighbour k by z_k
    # unchanged whenever sum |z| <= 1 and only scales larger sums down
    # (:func:`normalize_gates`, SPN's rule, not GSPN's sigmoid(z_k) / sum
    # sigmoid(z)). So z_k = 1 alone makes h copy that neighbour's state (a
    # full link), z_k = 0 is no link (the zero gates are the identity) and
    # z_k < 0 a negative one, which no pair label asks for. A sigmoid would
    # call an unlinked pair half linked (sigmoid(0) = 0.5); the normalised
    # gate would cap each of three same-class neighbours at 1/3, so the loss
    # inside a region could never reach 0. A positive pair whose gate is
    # <= 0 gets no gradient of its own, but the 1x1 gate conv is shared by
    # all pixels: the pairs above 0 pull its weights and bias up.
    return per_group.reshape(-1, NUM_GATE_MAPS, height, width).clamp(0, 1)


def neighbour_confidence(confidence: Tensor) -> Tensor:
    """The confidence of the neighbour that each gate reads.

    Args:
        confidence (Tensor): (N, 1, H, W) per-pixel confidence in [0, 1].

    Returns:
        Tensor: (N, 12, H, W); channel ``d * 3 + k`` at (i, j) is the
        confidence at ``(i, j) + GATE_OFFSETS[d * 3 + k]``, and 1 where
        that neighbour lies outside the image: the gate of a missing
        neighbour is left as the scan uses it (h = 0 there, the gate only
        enters the (1 - sum g) x term), so all-ones confidence changes
        nothing, at the border neither.
    """
    height, width = confidence.shape[2:]
    padded = F.pad(confidence, (1, 1, 1, 1), value=1.0)
    return torch.cat([
        padded[:, :, 1 + dy:1 + dy + height, 1 + dx:1 + dx + width]
        for dy, dx in GATE_OFFSETS
    ], 1)


def _scan_batched(x: Tensor, gates: Tensor,
                  directions: Iterable[str]) -> List[Tensor]:
    """Run several directions of the same scan shape as one batched scan.

    Args:
        x (Tensor): (N, C, H, W).
        gates (Tensor): (N, D, 3, G, H, W) with D = len(directions), already
            normalised, in the order of ``directions``.

    Returns:
        list[Tensor]: one (N, C, H, W) result per direction.
    """
    directions = list(directions)
    # Concatenating directions along the batch axis halves (or quarters) the
    # number of Python-level steps: the scan is bound by per-step overhead.
    xs = torch.cat([_to_scan_layout(x, d) for d in directions], 1)
    gs = torch.cat([
        _to_scan_layout(gates[:, i], d) for i, d in enumerate(directions)
    ], 1)
    h = _LinearScan.apply(xs.contiguous(), gs.contiguous())
    return [
        _from_scan_layout(part, d)
        for part, d in zip(h.split(x.shape[0], 1), directions)
    ]


def spn_scan(x: Tensor,
             g1: Tensor,
             g2: Tensor,
             g3: Tensor,
             direction: str = 'left_to_right') -> Tensor:
    """One direction of the three-way linear propagation (module docstring).

    The gates are used as given (see :func:`normalize_gates`).

    Args:
        x (Tensor): (N, C, H, W) input.
        g1, g2, g3 (Tensor): (N, C, H, W) per-channel or (N, G, H, W)
            per-group gates of the neighbours at orthogonal offset -1, 0, +1.
        direction (str): one of :data:`DIRECTIONS`.

    Returns:
        Tensor: (N, C, H, W) propagated map h.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f'spn_scan: direction must be one of {DIRECTIONS}, '
                         f'got {direction!r}')
    if not g1.shape == g2.shape == g3.shape:
        raise ValueError('spn_scan: g1, g2, g3 must have the same shape, got '
                         f'{tuple(g1.shape)}, {tuple(g2.shape)}, '
                         f'{tuple(g3.shape)}')
    _check_inputs(x, g1, 1)
    gates = torch.stack((g1, g2, g3), 1).unsqueeze(1)  # (N, 1, 3, G, H, W)
    return _scan_batched(x, gates, [direction])[0]


def spn_propagate(x: Tensor, gates: Tensor, merge: str = 'max',
                  confidence: Optional[Tensor] = None) -> Tensor:
    """Four-direction spatial propagation with SPN gate normalisation.

    Args:
        x (Tensor): (N, C, H, W) input.
        gates (Tensor): (N, 12 * G, H, W) raw gates; channel
            ``(d * 3 + k) * G + group`` is direction d (order of
            :data:`DIRECTIONS`), neighbour k (offset k - 1 along the
            orthogonal axis) and gate group ``group``. Normalised here
            (:func:`normalize_gates`) per direction, pixel and group.
        merge (str): 'max' (SPN's choice: each pixel takes the strongest
            of the four propagations, so a label spreads in whichever
            direction the gates let it) or 'mean' (keeps the map linear in
            x, and lets a wrong class be removed by the scans that bring
            the right one; it learns far better from imperfect labels,
            docs/benchmarks.md, and is what the configs use).
        confidence (Tensor, optional): (N, 1, H, W) in [0, 1], NLSPN's
            ``conf_prop``: each gate, *after* the normalisation, is
            multiplied by the confidence of the neighbour it reads
            (:func:`neighbour_confidence`), so confident pixels propagate
            into unconfident ones and not the reverse. Weighting after the
            normalisation keeps sum |g| <= 1 (c <= 1) and really scales each
            link: an unconfident neighbour's share goes to the pixel's own
            (1 - sum g) x term, whereas a normalisation after the weighting
            would hand it back to the other neighbours whenever sum |g| > 1.
            None: the normalised gates as they are.

    Returns:
        Tensor: (N, C, H, W) merged propagation.
    """
    if merge not in ('max', 'mean'):
        raise ValueError(f"spn_propagate: merge must be 'max' or 'mean', "
                         f'got {merge!r}')
    groups = _check_inputs(x, gates, NUM_GATE_MAPS)
    n, _, height, width = x.shape
    g = _normalize_neighbours(
        gates.view(n, len(DIRECTIONS), NUM_NEIGHBOURS, groups, height, width),
        2)
    if confidence is not None:
        if confidence.shape != (n, 1, height, width):
            raise ValueError(
                f'spn_propagate: confidence {tuple(confidence.shape)} must '
                f'be (N, 1, H, W) = {(n, 1, height, width)}')
        g = g * neighbour_confidence(confidence).view(
            n, len(DIRECTIONS), NUM_NEIGHBOURS, 1, height, width)
    if height == width:  # all four scans have the same (L, M) shape
        outputs = _scan_batched(x, g, DIRECTIONS)
    else:
        outputs = (_scan_batched(x, g[:, :2], DIRECTIONS[:2]) +
                   _scan_batched(x, g[:, 2:], DIRECTIONS[2:]))
    stacked = torch.stack(outputs)
    if merge == 'max':
        # max over a dim back-propagates through its argmax indices (one
        # scatter), much cheaper than the comparison masks of a chain of
        # torch.maximum; a tie sends the gradient to one direction.
        return stacked.max(0).values
    return stacked.mean(0)
