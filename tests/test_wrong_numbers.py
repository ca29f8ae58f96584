"""Wrong numbers nowhere (issue 19): each case gave a silently wrong gradient or passed a check
that compared nothing before it was fixed."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import backpropviz as bpv


@pytest.mark.parametrize("loss", [bpv.SquaredLoss, bpv.LogisticLoss])
def test_a_loss_whose_label_is_traced_is_refused_not_differentiated_wrongly(loss):
    """∂J/∂y was dropped (y treated as a constant): torch gives another gradient. Now refused,
    with the formula to write instead."""
    with pytest.raises(bpv.BackpropError, match=r"label y is a traced value \(u\[0\]\).*0\.5 \* "):
        bpv.trace(lambda z: loss()(z.sin(), z), np.array([0.5, -1.0, 2.0]))
    with pytest.raises(bpv.BackpropError, match="label y is a traced value"):
        bpv.trace(lambda z: z.sum() + loss()(z, z * 2.0), np.array([0.5, -1.0, 2.0]))


def test_the_autoencoder_loss_written_with_ops_gets_both_gradients():
    """The refusal's advice works: 0.5‖sin z − z‖² differentiated through both uses of z."""
    x = np.array([0.5, -1.0, 2.0])
    tr = bpv.trace(lambda z: 0.5 * ((z.sin() - z) ** 2).sum(), x)
    d = np.sin(x) - x
    np.testing.assert_allclose(tr.grad("u[0]"), d * (np.cos(x) - 1), rtol=1e-12)
    assert bpv.gradcheck(lambda z: 0.5 * ((z.sin() - z) ** 2).sum(), x).ok


def test_a_gradcheck_that_compared_nothing_does_not_pass():
    from backpropviz.core.gradcheck import GradcheckReport
    report = GradcheckReport((), 1e-5, 1e-7)
    assert not report.ok and "FAILED" in str(report) and "nothing to compare" in str(report)


def test_div_backward_near_the_ends_of_the_float_range():
    """d/dz Σ z/z is exactly 0 (b² underflowed: −1.1e155); d/db (a/b) at a = b = 1e-200 is
    finite (−a·v/b² gave −inf)."""
    tr = bpv.trace(lambda z: (z / z).sum(), np.array([1e-160, 3.0]))
    np.testing.assert_array_equal(tr.grad("u[0]"), [0.0, 0.0])
    tr = bpv.trace(lambda a, b: (a / b).sum(), np.array([1e-200]), np.array([1e-200]))
    np.testing.assert_allclose(tr.grad("x[2]"), [-1e200], rtol=1e-12)
    np.testing.assert_allclose(tr.grad("x[1]"), [1e200], rtol=1e-12)


@settings(max_examples=60, deadline=None)
@given(a=st.floats(1e-300, 1e300), b=st.floats(1e-300, 1e300), v=st.floats(-4.0, 4.0))
def test_div_backward_is_finite_wherever_its_exact_value_is(a, b, v):
    """Wherever the forward value a/b is finite (else the forward step already refuses it) and
    −a·v/b² (computed exactly, in fractions) is a normal double, the rule gives it to rounding: no
    spurious 0 or inf from an intermediate b² out of range."""
    from fractions import Fraction
    if not np.isfinite(a / b):
        return
    try:
        exact = float(-Fraction(a) * Fraction(v) / Fraction(b) ** 2)
    except OverflowError:
        return                              # the true value itself is out of range
    if exact != 0 and abs(exact) < 1e-290:
        return
    got = bpv.Div().grad_b(np.array([a]), np.array([b]), np.array([v]))[0]
    assert np.isfinite(got) and np.sign(got) == np.sign(exact)
    tiny = np.finfo(float).tiny            # a subnormal quotient keeps fewer digits
    if all(q == 0 or abs(q) >= tiny for q in (a / b, v / b)):
        assert got == pytest.approx(exact, rel=1e-12, abs=0)


def test_a_network_whose_last_module_is_not_an_mm_knows_its_output_shape():
    """Sequential guessed the output from the last MM: [MM (3×2), Sum] was refused as 'shape 3'."""
    net = bpv.Sequential([bpv.MM(np.ones((3, 2))), bpv.Sum()])
    x = np.array([1.0, 2.0])
    assert net.output_shape(x) == () and net.backprop(x).loss == 9.0
    assert bpv.gradcheck(net, x).ok
    with pytest.raises(bpv.BackpropError, match="has shape 3"):       # still refused when it is
        bpv.Sequential([bpv.MM(np.ones((3, 2)))]).backprop(x)
