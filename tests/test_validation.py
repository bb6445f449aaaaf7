"""Invalid values: NaN by default, ``ValueError`` inside ``xploss.validation()``.

For every function with a value constraint (class indices, probabilities,
variances, CTC lengths and labels), on every installed backend and device:

- by default the elements with an invalid value, and only those, come out NaN
  (``reduction='none'``), with no exception;
- inside ``xploss.validation()`` the call raises ``ValueError`` naming the
  function and the argument, and counting the invalid elements;
- inside ``xploss.validation()`` valid inputs give the same result as outside
  (ignored targets are not invalid);
- the mode is thread-local, nests, and is restored after an exception.
"""

import math
import threading

import numpy as np
import pytest

import xploss

NAN = math.nan
LOGITS = np.array([[0.5, 1.5, -1.0], [2.0, -0.5, 0.25], [0.0, 1.0, 3.0]])
LOG_PROBS = np.log(np.full((4, 3, 3), 1 / 3))


def _ctc(targets, input_lengths, target_lengths):
    return (LOG_PROBS, np.array(targets), np.array(input_lengths), np.array(target_lengths))


# (function, arguments with one or more invalid values, the argument named in the
# error, the invalid count, which 'none' outputs are NaN, keyword options)
INVALID = [
    ("cross_entropy", (LOGITS, np.array([1, 3, -100])), "target", 1, [False, True, False], {}),
    ("cross_entropy", (LOGITS, np.array([-1, 0, 2])), "target", 1, [True, False, False], {}),
    ("nll_loss", (LOGITS, np.array([0, 7, 2])), "target", 1, [False, True, False], {}),
    ("softmax_focal_loss", (LOGITS, np.array([0, 1, 3])), "target", 1, [False, False, True], {}),
    ("poly1_cross_entropy", (LOGITS, np.array([5, 1, 2])), "target", 1, [True, False, False], {}),
    ("multi_margin_loss", (LOGITS, np.array([0, -2, 2])), "target", 1, [False, True, False], {}),
    ("multiclass_hinge_loss", (LOGITS, np.array([0, 1, 3])), "target", 1, [False, False, True],
     {}),
    # Labels before the first -1 must be classes; after it they are not read.
    ("multilabel_margin_loss", (LOGITS, np.array([[0, 3, -1], [1, -1, 9], [2, -2, -1]])),
     "target", 2, [True, False, True], {}),
    ("binary_cross_entropy", (np.array([0.5, 1.5, -0.25]), np.array([1.0, 1.0, 0.0])),
     "input", 2, [False, True, True], {}),
    ("kl_div", (np.array([-1.0, -2.0, -0.5]), np.array([0.5, -0.25, 0.25])), "target", 1,
     [False, True, False], {}),
    ("gaussian_nll_loss", (np.array([1.0, 2.0, 3.0]), np.array([1.5, 2.0, 2.0]),
                           np.array([1.0, -1.0, 0.0])), "var", 1, [False, True, False], {}),
    ("msle_loss", (np.array([0.5, -1.5, 2.0]), np.array([1.0, 1.0, 1.0])), "input", 1,
     [False, True, False], {}),
    ("msle_loss", (np.array([0.5, 1.5, 2.0]), np.array([1.0, 1.0, -3.0])), "target", 1,
     [False, False, True], {}),
    ("dice_loss", (np.array([[0.5, 0.25], [1.25, 0.5], [0.5, 0.5]]), np.full((3, 2), 1.0)),
     "input", 1, [False, True, False], {"axis": 1}),
    ("tversky_loss", (np.full((3, 2), 0.5), np.array([[1.0, 0.0], [0.0, 1.0], [-0.5, 1.0]])),
     "target", 1, [False, False, True], {"axis": 1}),
    ("ctc_loss", _ctc([[1, 2], [1, 3], [2, 2]], [4, 4, 4], [2, 2, 1]), "targets", 1,
     [False, True, False], {}),
    ("ctc_loss", _ctc([[1, 2], [1, 0], [2, 2]], [4, 4, 4], [2, 2, 1]), "targets", 1,
     [False, True, False], {}),  # the blank is not a label
    ("ctc_loss", _ctc([[1, 2], [1, 2], [2, 2]], [4, 5, -1], [2, 2, 1]), "input_lengths", 2,
     [False, True, True], {}),
    ("ctc_loss", _ctc([[1, 2], [1, 2], [2, 2]], [4, 4, 4], [2, 3, -1]), "target_lengths", 2,
     [False, True, True], {}),
    ("ctc_loss", _ctc([1, 2, 1, 2, 2], [4, 4, 4], [2, 2, 2]), "target_lengths", 1,
     [False, False, True], {}),  # concatenated: the third span runs past the end
]


def _ids(rows):
    return [f"{r[0]}-{r[2]}-{i}" for i, r in enumerate(rows)]


def _call(target, name, args, kwargs, **extra):
    arrays = [target.backend.asarray(a, target) for a in args]
    return getattr(xploss, name)(*arrays, **kwargs, **extra)


@pytest.mark.parametrize(("name", "args", "argument", "count", "nan_at", "kwargs"), INVALID,
                         ids=_ids(INVALID))
def test_invalid_values_are_nan_by_default(target, name, args, argument, count, nan_at,
                                           kwargs):
    out = target.backend.to_numpy(_call(target, name, args, kwargs, reduction="none"))
    assert np.isnan(out).tolist() == nan_at


@pytest.mark.parametrize(("name", "args", "argument", "count", "nan_at", "kwargs"), INVALID,
                         ids=_ids(INVALID))
def test_validation_mode_raises(target, name, args, argument, count, nan_at, kwargs):
    with xploss.validation(), pytest.raises(ValueError, match=f"^{name}: ") as info:
        _call(target, name, args, kwargs)
    message = str(info.value)
    assert message.startswith(f"{name}: {argument!r} must ")
    assert f"; {count} of " in message


VALID = [
    ("cross_entropy", (LOGITS, np.array([1, 2, -100])), {}),
    ("cross_entropy", (LOGITS, np.array([1, 2, 7])), {"ignore_index": 7}),
    ("nll_loss", (LOGITS, np.array([0, -100, 2])), {}),
    ("multilabel_margin_loss", (LOGITS, np.array([[0, 2, -1], [1, -1, 9], [2, 1, 0]])), {}),
    ("binary_cross_entropy", (np.array([0.0, 1.0, 0.25]), np.array([1.0, 1.0, 0.0])), {}),
    ("kl_div", (np.array([-1.0, -2.0, -0.5]), np.array([0.5, 0.0, 0.25])), {}),
    ("gaussian_nll_loss", (np.array([1.0, 2.0]), np.array([1.5, 2.0]), np.array([0.0, 1.0])),
     {}),
    ("msle_loss", (np.array([-1.0, 2.0]), np.array([1.0, -1.0])), {}),
    ("dice_loss", (np.array([0.0, 1.0, 0.5]), np.array([1.0, 1.0, 0.0])), {}),
    ("ctc_loss", _ctc([[1, 2], [1, 9], [2, 2]], [4, 0, 4], [2, 0, 1]), {}),
]


@pytest.mark.parametrize(("name", "args", "kwargs"), VALID, ids=[r[0] for r in VALID])
def test_validation_mode_accepts_valid_values(target, name, args, kwargs):
    plain = target.backend.to_numpy(_call(target, name, args, kwargs, reduction="none"))
    with xploss.validation():
        checked = target.backend.to_numpy(_call(target, name, args, kwargs, reduction="none"))
    assert not np.any(np.isnan(plain))
    np.testing.assert_array_equal(checked, plain)


def test_validation_mode_nests_and_is_restored():
    args = (LOGITS, np.array([0, 3, 1]))
    with xploss.validation():
        with xploss.validation(enabled=False):
            assert np.isnan(xploss.cross_entropy(*args))
        with pytest.raises(ValueError, match="cross_entropy: 'target'"):
            xploss.cross_entropy(*args)
    assert np.isnan(xploss.cross_entropy(*args))
    with pytest.raises(RuntimeError), xploss.validation():
        raise RuntimeError
    assert np.isnan(xploss.cross_entropy(*args))


def test_validation_mode_is_thread_local():
    args = (LOGITS, np.array([0, 3, 1]))
    inside, outside = threading.Event(), threading.Event()
    seen = {}

    def other_thread():
        inside.wait(timeout=30)
        seen["value"] = float(xploss.cross_entropy(*args))  # no error: not validating here
        outside.set()

    worker = threading.Thread(target=other_thread)
    worker.start()
    with xploss.validation():
        inside.set()
        outside.wait(timeout=30)
        with pytest.raises(ValueError, match=r"^cross_entropy: "):
            xploss.cross_entropy(*args)
    worker.join()
    assert math.isnan(seen["value"])


def test_validation_mode_under_jit_names_the_function():
    jax = pytest.importorskip("jax")
    f = jax.jit(xploss.cross_entropy)
    x, t = jax.numpy.asarray(LOGITS), jax.numpy.asarray([0, 1, 2])
    with xploss.validation(), pytest.raises(TypeError, match="cross_entropy: validation mode"):
        f(x, t)
    with xploss.validation(enabled=False):
        assert np.isfinite(float(f(x, t)))


def test_validation_mode_with_torch_compile():
    """Outside the mode the compiled graph has no host read (fullgraph works); inside
    it the read is a graph break, so only a non-fullgraph compile validates."""
    torch = pytest.importorskip("torch")
    x, t = torch.tensor(LOGITS), torch.tensor([0, 3, 1])
    full = torch.compile(xploss.cross_entropy, fullgraph=True)
    assert torch.isnan(full(x, t))
    partial = torch.compile(xploss.cross_entropy)
    with xploss.validation(), pytest.raises(ValueError, match="cross_entropy: 'target'"):
        partial(x, t)
