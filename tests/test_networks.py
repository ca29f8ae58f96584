"""One definition of "this network is an MLP" (core.networks.mlp_shape), used by the training lab,
its files and the Stepper's rebuild controls alike."""
import numpy as np
import pytest

import backpropviz as bpv
from backpropviz.core.networks import MLPShape, loss_name, mlp_shape
from backpropviz.lab.train import describe
from backpropviz.teach.rebuild import fixed_reason


@pytest.mark.parametrize("args", [((2, 3, 1), "relu", "logistic", None),
                                  ((4, 5, 5, 3), "tanh", "cross_entropy", None),
                                  ((1, 1), "relu", "squared", None),
                                  ((2, 3, 2), "sigmoid", None, "sigmoid")])
def test_mlp_shape_gives_back_the_arguments_of_mlp(args):
    sizes, act, loss, out = args
    net = bpv.mlp(list(sizes), activation=act, loss=loss, output_activation=out)
    assert mlp_shape(net) == MLPShape(sizes, act, loss, out)


class MyMM(bpv.MM):
    label = "MyMM"


class MyReLU(bpv.ReLU):
    pass


@pytest.mark.parametrize("layers", [
    lambda: [MyMM(np.ones((3, 2))), bpv.ReLU(), bpv.MM(np.ones((1, 3)))],   # a learner's MM
    lambda: [bpv.MM(np.ones((3, 2))), MyReLU(), bpv.MM(np.ones((1, 3)))],   # a learner's σ
    lambda: [bpv.MM(np.ones((3, 2))), bpv.ReLU(), bpv.MM(np.ones((3, 3))), bpv.Tanh(),
             bpv.MM(np.ones((1, 3)))],                                       # mixed σ
    lambda: [bpv.MM(np.ones((3, 2))), bpv.MM(np.ones((1, 3)))],              # no σ between
])
def test_networks_mlp_cannot_build_are_not_mlps_anywhere(layers):
    """The lab (describe), its files and the Stepper's controls agree (they used to disagree on
    an MM subclass: the lab saved it as an MLP, the file then would not load)."""
    net = bpv.Sequential(layers(), loss="logistic")
    assert mlp_shape(net) is None and describe(net) is None
    assert "MLPs made of MM" in fixed_reason(net, np.ones(2))


def test_loss_name_is_exact():
    class MyLoss(bpv.LogisticLoss):
        pass
    assert loss_name(bpv.LogisticLoss()) == "logistic" and loss_name(MyLoss()) is None
    assert loss_name(None) is None
