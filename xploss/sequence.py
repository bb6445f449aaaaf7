"""Sequence losses: connectionist temporal classification (CTC).

Names, argument order and semantics follow ``torch.nn.functional``; every
deviation is listed in the function's Notes. The forward algorithm runs in log
space on double words (a float and its rounding error), over a Python loop on
the static time axis; lengths and labels enter only through masks and
``where``, so the function traces under ``jax.jit`` and
``torch.compile(fullgraph=True)`` and stays lazy on Dask.
"""

from __future__ import annotations

import math

import array_api_compat

from . import _checks
from ._reductions import reduce
from ._support import const, device, namespace, to_compute, two_sum_error

__all__ = ["ctc_loss"]


def _integer(xp, fname, name, x):
    if xp.isdtype(x.dtype, "bool") or not xp.isdtype(x.dtype, "integral"):
        msg = f"{fname}: {name!r} must have an integer dtype, got {x.dtype}"
        raise TypeError(msg)


def _previous_index(xp, n, k, dev):
    """Indices ``max(s - k, 0)`` for ``s < n``: with ``take``, ``a[..., s - k]`` at
    every state (``a[..., 0]`` where ``s < k``, which the caller masks). Fixed by
    the shape; slicing and concatenating instead would split a Dask array's
    chunks a little further at every frame."""
    return xp.asarray([max(s - k, 0) for s in range(n)], device=dev)


def _log_add(xp, terms, zero):
    """log Σ exp(h_i + l_i) of two or three double words ``(h_i, l_i)``, as
    ``(m, c, alive)``: the sum is ``m + c`` where ``alive`` and -inf elsewhere.

    With k the first maximum of the ``h_i + l_i``, log Σ = h_k + l_k + log1p(u),
    u = Σ_{i≠k} exp((h_i - h_k) + (l_i - l_k)) in [0, 2], so ``c = l_k + log1p(u)``
    is small and rounds with an absolute error of about eps (h_i - h_k is exact
    where e^{h_i - h_k} matters, by Sterbenz's lemma). Where every h_i is -inf
    the maximum is replaced by 0 before the subtraction (double where): every
    exp then sees -inf, with value and derivative 0, and nothing is NaN. A NaN
    h_i is never the maximum and reaches u, so it propagates. ``zero`` is the
    caller's (built from the input: an intermediate that does not depend on a
    traced input is a concrete array on JAX's default device, and a constant
    built beside it would be committed there).
    """
    (h0, l0), (h1, l1) = terms[:2]

    def at_least(h, lo, h_other, lo_other):
        # Compared as double words: where |h| is large, equal h can differ by
        # far more than 1 in their lo, and the exp below must see d <= 0.
        return (h > h_other) | ((h == h_other) & (lo >= lo_other))

    if len(terms) == 3:
        h2, l2 = terms[2]
        first = at_least(h0, l0, h1, l1) & at_least(h0, l0, h2, l2)
        second = ~first & at_least(h1, l1, h2, l2)
        m = xp.where(first, h0, xp.where(second, h1, h2))
        lk = xp.where(first, l0, xp.where(second, l1, l2))
        chosen = [first, second, ~(first | second)]
    else:
        first = at_least(h0, l0, h1, l1)
        m, lk = xp.where(first, h0, h1), xp.where(first, l0, l1)
        chosen = [first, ~first]
    alive = m != -math.inf  # True for NaN
    m_s, lk_s = xp.where(alive, m, zero), xp.where(alive, lk, zero)
    u = zero
    for (h, lo), is_k in zip(terms, chosen, strict=True):
        u = u + xp.where(is_k, zero, xp.exp((h - m_s) + (lo - lk_s)))
    return m_s, lk_s + xp.log1p(u), alive


def _finite_error(xp, s, a, b):
    """TwoSum's error of ``s = a + b``, 0 where ``s`` overflowed (no NaN)."""
    return xp.where(xp.isinf(s), const(xp, 0.0, s), two_sum_error(xp, a, b))


def _padded_from_concatenated(xp, targets, target_lengths, width):
    """(N, width) padded targets from 1-d concatenated ones, and whether each
    sample's span lies inside ``targets``. Entry j of sample n is
    targets[offset_n + j], selected by a broadcast comparison (no gather)."""
    n = target_lengths.shape[0]
    total = targets.shape[0]
    itype = target_lengths.dtype
    dev = device(target_lengths)
    zero = const(xp, 0, target_lengths)
    rows = xp.arange(n, dtype=itype, device=dev)
    # offset_n = Σ_{m<n} len_m, from an (N, N) comparison (no cumulative_sum on every library).
    # (Integer sums name their dtype: the default promotes to int64, which a device
    # without 64-bit types lacks.)
    offsets = xp.sum(xp.where(rows[None, :] < rows[:, None], target_lengths[None, :], zero),
                     axis=1, dtype=itype)
    j = xp.arange(width, dtype=itype, device=dev)
    pos = xp.arange(total, dtype=itype, device=dev)
    hit = pos[None, None, :] == (offsets[:, None, None] + j[None, :, None])
    padded = xp.sum(xp.where(hit, targets[None, None, :], const(xp, 0, targets)), axis=2,
                    dtype=targets.dtype)
    inside = (offsets >= 0) & (offsets + target_lengths <= total)
    return padded, inside


def ctc_loss(log_probs, targets, input_lengths, target_lengths, /, *, blank=0,
             reduction="mean", zero_infinity=False):
    r"""Connectionist temporal classification loss, the negative log-likelihood
    of ``targets`` summed over every alignment of them to the input frames.

    .. math::

        \ell_n = -\log \sum_{\pi \in \mathcal{B}^{-1}(y_n)} \prod_{t < T_n}
        p_{t, n, \pi_t}

    where :math:`\mathcal{B}` removes repeated labels and then blanks, and
    :math:`T_n` is ``input_lengths[n]``.

    Parameters
    ----------
    log_probs : array
        ``(T, N, C)`` or unbatched ``(T, C)`` log-probabilities (floating),
        e.g. from :func:`log_softmax`; ``-inf`` entries are probability 0.
    targets : array
        Integer labels: ``(N, S)`` padded (row ``n`` holds its labels first),
        or 1-d of length ``sum(target_lengths)`` concatenated (batched input
        only); ``(S,)`` for unbatched input.
    input_lengths, target_lengths : array
        ``(N,)`` integer arrays (``()`` for unbatched input); each input
        length at most ``T``.
    blank : int, optional
        The blank class, in ``[0, C)``.
    reduction : {'mean', 'sum', 'none'}, optional
        ``'mean'``: the mean over the batch of ``loss / max(target_length, 1)``
        (torch's rule); ``'none'``: ``(N,)`` (``()`` unbatched).
    zero_infinity : bool, optional
        Replace infinite losses (impossible alignments) by 0, with zero gradient.

    Returns
    -------
    array
        The loss; float32 for 16-bit input (computed in float32, as every
        xploss loss), else the input's dtype.

    Notes
    -----
    The forward algorithm of Graves et al. [1]_ over the extended label
    sequence (blanks around and between the labels), in log space:
    :math:`\alpha_t(s) = \log p_{t, l'_s} + \log \sum_{r} e^{\alpha_{t-1}(r)}`
    over the two or three predecessors ``r`` of state ``s``. Each
    :math:`\alpha` is kept as a double word ``hi + lo`` and each log-add is
    :math:`m + (l_k + \operatorname{log1p}(u))` with :math:`m` the largest
    predecessor and :math:`u \le 2` (TwoSum for every addition), so a step
    adds an absolute error of about :math:`\varepsilon` (the rounding of
    ``log1p(u) <= ln 3``) however large :math:`|\alpha|` has grown, instead of
    :math:`\varepsilon |\alpha_t|` (which accumulates to about
    :math:`T \varepsilon \ell / 2`); the loss is rounded once at the end.
    Error model: :math:`|\hat\ell - \ell| \lesssim \varepsilon\,(|\ell|/2 +
    \sum_t \operatorname{log1p}(u_t))`, the sum over the frames of the log-add
    terms along the path of largest predecessors. For normalised
    log-probabilities it is a few ULP of the loss (measured against mpmath: at
    most 1.7 ULP in float64 and float32, for T up to 150 and for the tiny
    losses of confident predictions); for unnormalised scores whose loss
    nearly cancels, the log-add sum is the
    relevant scale.

    Impossible alignments (an input too short for the target and the blanks
    its repeated labels need) give ``+inf``, and 0 with zero gradient under
    ``zero_infinity``. Gradients are finite wherever the loss is, including
    at ``-inf`` log-probabilities. Invalid values give NaN for that sample
    (torch raises, which needs a host synchronisation): an input length
    outside ``[0, T]``, a negative target length, a padded target length
    above ``S``, a concatenated span outside ``targets``, or a label outside
    ``[0, C)`` or equal to ``blank`` (torch computes a number for the last).

    Deviations from ``torch.nn.functional.ctc_loss``: the gradient is the
    true derivative :math:`-\gamma_t(c)` (minus the posterior occupation of
    class ``c`` at frame ``t``) with respect to ``log_probs``; torch's native
    backward returns :math:`e^{\log p} - \gamma`, the gradient with respect
    to the logits of a ``log_softmax`` that it assumes produced ``log_probs``
    (pytorch/pytorch#52241, #82545). Through an explicit ``log_softmax`` both
    give the same logits gradient. torch's backward is NaN at ``-inf``
    log-probabilities (even of classes outside the target); here it is 0.
    Lengths and targets must be arrays (torch also takes tuples of ints). An
    empty batch gives an empty ``'none'`` result and a ``'sum'`` or ``'mean'``
    of 0 (torch raises).

    References
    ----------
    .. [1] A. Graves, S. Fernández, F. Gomez and J. Schmidhuber, "Connectionist
       temporal classification: labelling unsegmented sequence data with
       recurrent neural networks", ICML 2006.

    Examples
    --------
    >>> import math
    >>> import array_api_strict as xp
    >>> import xploss
    >>> lp = xp.log(xp.asarray([[[0.25, 0.75]], [[0.5, 0.5]]]))  # T=2, N=1, C=2
    >>> # Alignments of [1] in two frames: "11", "1-", "-1"; p = 3/8 + 3/8 + 1/8.
    >>> xploss.ctc_loss(lp, xp.asarray([[1]]), xp.asarray([2]), xp.asarray([1]),
    ...                 reduction="none")
    Array([0.13353139], dtype=array_api_strict.float64)

    A confident prediction: label 1 has probability 1 - 1e-12 in each of three
    frames (mpmath: loss 9.999999999985e-13). The forward pass in probability
    space keeps five digits:

    >>> d = 1e-12
    >>> q = 1.0 - d
    >>> -math.log(q**3 + 2 * q * q * d + 3 * q * d * d)  # the three kinds of alignment
    9.999778782803785e-13
    >>> sure = xp.asarray([[[math.log(d), math.log1p(-d)]]] * 3)
    >>> float(xploss.ctc_loss(sure, xp.asarray([[1]]), xp.asarray([3]), xp.asarray([1]),
    ...                       reduction="sum"))
    9.999999999984997e-13
    """
    fname = "ctc_loss"
    _checks.reduction(fname, reduction)
    xp = namespace(fname, log_probs=log_probs, targets=targets, input_lengths=input_lengths,
                   target_lengths=target_lengths)
    _checks.floating(xp, fname, "log_probs", log_probs)
    for name, a in (("targets", targets), ("input_lengths", input_lengths),
                    ("target_lengths", target_lengths)):
        _integer(xp, fname, name, a)
    if log_probs.ndim not in (2, 3):
        msg = (f"{fname}: 'log_probs' must have shape (T, N, C) or (T, C), got "
               f"{tuple(log_probs.shape)}")
        raise ValueError(msg)
    batched = log_probs.ndim == 3
    n_classes = log_probs.shape[-1]
    if isinstance(blank, bool) or not isinstance(blank, int) or not 0 <= blank < n_classes:
        msg = f"{fname}: 'blank' must be an int in [0, {n_classes}) (C), got {blank!r}"
        raise ValueError(msg)
    if not isinstance(zero_infinity, bool):
        msg = f"{fname}: 'zero_infinity' must be a bool, got {zero_infinity!r}"
        raise TypeError(msg)
    if batched:
        n = log_probs.shape[1]
        if targets.ndim not in (1, 2) or (targets.ndim == 2 and targets.shape[0] != n):
            msg = (f"{fname}: 'targets' must have shape (N, S) = ({n}, S) or be 1-d "
                   f"(concatenated), got {tuple(targets.shape)}")
            raise ValueError(msg)
        length_shape = (n,)
    else:
        if targets.ndim != 1:
            msg = (f"{fname}: 'targets' must have shape (S,) for unbatched 'log_probs', "
                   f"got {tuple(targets.shape)}")
            raise ValueError(msg)
        length_shape = ()
    for name, a in (("input_lengths", input_lengths), ("target_lengths", target_lengths)):
        if tuple(a.shape) != length_shape:
            msg = f"{fname}: {name!r} must have shape {length_shape}, got {tuple(a.shape)}"
            raise ValueError(msg)

    lp = to_compute(xp, log_probs)
    # Under a JAX transformation log_probs may be a tracer, whose device is
    # unknown (None); the indices then name it. Arrays built without the device
    # would land on the default device, beside indices on another.
    dev = device(lp)
    if dev is None:
        dev = device(targets)
    itype = xp.__array_namespace_info__().default_dtypes(device=dev)["indexing"]

    def index_array(a):
        if dev is not None and device(a) != dev:
            a = array_api_compat.to_device(a, dev)
        return a if a.dtype == itype else xp.astype(a, itype)

    tgt, in_len, tgt_len = (index_array(a) for a in (targets, input_lengths, target_lengths))
    if not batched:
        lp, tgt = lp[:, None, :], tgt[None, :]
        in_len, tgt_len = in_len[None], tgt_len[None]
    n_frames, n = lp.shape[0], lp.shape[1]
    if n == 0:
        # An empty batch (a static shape): (N,) = (0,) losses, still connected to
        # log_probs for autograd; some libraries cannot reshape zero-size arrays.
        return reduce(xp, xp.sum(lp, axis=(0, 2)), reduction)
    izero = const(xp, 0, in_len)

    # Padded (N, S) labels, and per-sample invalid values (NaN results).
    bad_input_len = (in_len < 0) | (in_len > n_frames)
    _checks.values(xp, fname, "input_lengths", bad_input_len, f"lie in [0, {n_frames}]")
    if tgt.ndim == 1:
        # A sample longer than T frames is impossible anyway: S = min(L, T) columns suffice.
        labels, inside = _padded_from_concatenated(xp, tgt, tgt_len, min(tgt.shape[0], n_frames))
        bad_target_len = (tgt_len < 0) | ~inside
        span = f"be >= 0 and sum to at most len(targets) = {tgt.shape[0]}"
    else:
        labels = tgt
        bad_target_len = (tgt_len < 0) | (tgt_len > labels.shape[1])
        span = f"lie in [0, {labels.shape[1]}]"
    _checks.values(xp, fname, "target_lengths", bad_target_len, span)
    width = labels.shape[1]
    k = xp.arange(width, dtype=itype, device=dev)
    bad_label = ((labels < 0) | (labels >= n_classes) | (labels == blank)) & (
        k[None, :] < tgt_len[:, None])
    _checks.values(xp, fname, "targets", bad_label,
                   f"hold labels in [0, {n_classes}) other than blank ({blank}) "
                   "within each target length")
    invalid = bad_input_len | bad_target_len | xp.any(bad_label, axis=1)

    # Extended labels l' = (blank, y_1, blank, y_2, ..., y_S, blank): (N, 2S + 1).
    blank_column = xp.full((n, 1), blank, dtype=itype, device=dev)
    ext = blank_column
    if width:
        pairs = xp.stack([xp.full((n, width), blank, dtype=itype, device=dev), labels], axis=2)
        ext = xp.concat([xp.reshape(pairs, (n, 2 * width)), blank_column], axis=1)
    n_states = 2 * width + 1
    # s -> s + 2 skips a blank unless both labels are equal (or s + 2 is a blank).
    states = xp.arange(n_states, dtype=itype, device=dev)
    back1, back2 = (_previous_index(xp, n_states, k, dev) for k in (1, 2))
    skip = (states >= 2) & (ext != blank) & (ext != xp.take(ext, back2, axis=1))

    zero, neg_inf = const(xp, 0.0, lp), const(xp, -math.inf, lp)
    # log p_{t, n, l'_s} for every frame: one ``take`` from the (T, N·C) view at the
    # indices n·C + l'_s (labels outside [0, C) read class 0; their sample is NaN).
    ext_safe = xp.where((ext >= 0) & (ext < n_classes), ext, const(xp, 0, ext))
    flat = xp.reshape(xp.arange(n, dtype=itype, device=dev) * n_classes, (n, 1)) + ext_safe
    lpe = xp.reshape(xp.take(xp.reshape(lp, (n_frames, n * n_classes)),
                             xp.reshape(flat, (n * n_states,)), axis=1),
                     (n_frames, n, n_states))
    # alpha before the first frame: log 1 in state 0, -inf elsewhere. One step of
    # the recursion then gives alpha_0(s) = log p_0(l'_s) for s in {0, 1}, and an
    # input length of 0 keeps it (loss 0 for an empty target, +inf otherwise).
    # Each alpha is a double word h + lo.
    h = xp.where(states[None, :] == 0, zero, neg_inf) + xp.zeros((n, 1), dtype=lp.dtype,
                                                                  device=dev)
    lo = xp.zeros((n, n_states), dtype=lp.dtype, device=dev)
    has_previous = states[None, :] >= 1
    for t in range(n_frames):
        # Predecessors s - 1 and s - 2 (the lo of a -inf h is never read).
        h1 = xp.where(has_previous, xp.take(h, back1, axis=1), neg_inf)
        h2 = xp.where(skip, xp.take(h, back2, axis=1), neg_inf)
        m, c, alive = _log_add(xp, [(h, lo), (h1, xp.take(lo, back1, axis=1)),
                                    (h2, xp.take(lo, back2, axis=1))], zero)
        a = lpe[t, ...]
        alive = alive & (a != -math.inf)
        b = xp.where(alive, a, zero)
        # (m + b) + c as a double word: TwoSum for both additions.
        s1 = m + b
        r = _finite_error(xp, s1, m, b) + c
        hi_new = s1 + r
        lo_new = _finite_error(xp, hi_new, s1, r)
        running = (t < in_len)[:, None]
        h = xp.where(running, xp.where(alive, hi_new, neg_inf), h)
        lo = xp.where(running, xp.where(alive, lo_new, zero), lo)

    # The last blank (s = 2L) and the last label (s = 2L - 1) at frame T_n - 1.
    last = [states[None, :] == 2 * tgt_len[:, None],
            (states[None, :] == 2 * tgt_len[:, None] - 1) & (tgt_len > izero)[:, None]]
    ends = []
    for sel in last:
        found = xp.any(sel, axis=1)
        ends.append((xp.where(found, xp.sum(xp.where(sel, h, zero), axis=1), neg_inf[None]),
                     xp.where(found, xp.sum(xp.where(sel, lo, zero), axis=1), zero[None])))
    m, c, alive = _log_add(xp, ends, zero)
    loss = xp.where(alive, -(m + c), const(xp, math.inf, lp))
    # NaN in, NaN out: a NaN (or +inf) log-probability of the blank or of a target
    # label, in a frame before the input length, makes the loss NaN wherever it
    # sits (the recursion alone would drop it where the alignment cannot pass).
    not_prob = ~(xp.isfinite(lpe) | (lpe == -math.inf))
    frames = xp.arange(n_frames, dtype=itype, device=dev)
    used = ((frames[:, None, None] < in_len[None, :, None])
            & (states[None, None, :] <= 2 * tgt_len[None, :, None]))
    invalid = invalid | xp.any(xp.any(not_prob & used, axis=2), axis=0)
    if zero_infinity:
        loss = xp.where(loss == math.inf, zero, loss)
    loss = xp.where(invalid, const(xp, math.nan, lp), loss)
    if reduction == "mean":
        # torch: each loss over its target length (at least 1), then the batch mean.
        one = const(xp, 1.0, lp)
        lengths = xp.astype(tgt_len, lp.dtype)
        loss = loss / xp.where(lengths < 1.0, one, lengths)
    if not batched:
        loss = loss[0]
    return reduce(xp, loss, reduction)
