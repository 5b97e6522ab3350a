"""Each loss against values worked out by hand."""

import math

import pytest
import torch

from ganbench.losses import LOSSES, class_loss, get_loss, gradient_penalty


def t(*values):
    return torch.tensor(values, dtype=torch.float64)


def log_sigmoid(x):
    return -math.log1p(math.exp(-x))


def test_bce_d_loss_matches_hand_computation():
    # real logit 0 -> D = 1/2, target 1: -log(1/2); fake logit ln(3) -> D = 3/4, target 0: -log(1/4)
    loss = get_loss("bce").d_loss(t(0.0), t(math.log(3.0)), t(1.0), t(0.0))
    assert loss.item() == pytest.approx(math.log(2) + math.log(4))


def test_bce_d_loss_with_smoothed_target():
    # target 0.9 on logit 0: -(0.9 log 0.5 + 0.1 log 0.5) = log 2
    loss = get_loss("bce").d_loss(t(0.0), t(-50.0), t(0.9), t(0.0))
    assert loss.item() == pytest.approx(math.log(2), abs=1e-9)


def test_non_saturating_generator_loss_is_minus_log_d():
    x = math.log(3.0)  # D(G(z)) = 3/4
    assert get_loss("bce").g_loss(t(x), t(1.0)).item() == pytest.approx(-math.log(0.75))


def test_minimax_generator_loss_is_log_one_minus_d():
    x = math.log(3.0)  # D(G(z)) = 3/4 -> log(1 - 3/4) = log(1/4)
    assert get_loss("minimax").g_loss(t(x), t(1.0)).item() == pytest.approx(math.log(0.25))


def test_minimax_saturates_where_non_saturating_does_not():
    # Early in training D(G(z)) ~ 0: the minimax gradient vanishes, the non-saturating one does not.
    x = torch.tensor([-10.0], requires_grad=True)
    get_loss("minimax").g_loss(x, torch.ones(1)).backward()
    minimax_grad = abs(x.grad.item())
    x.grad = None
    get_loss("bce").g_loss(x, torch.ones(1)).backward()
    assert minimax_grad < 1e-4 < abs(x.grad.item())


def test_lsgan_losses():
    # 1/2 [(2 - 1)^2] + 1/2 [(0.5 - 0)^2] = 0.5 + 0.125
    assert get_loss("lsgan").d_loss(t(2.0), t(0.5), t(1.0), t(0.0)).item() == pytest.approx(0.625)
    assert get_loss("lsgan").g_loss(t(0.5), t(1.0)).item() == pytest.approx(0.125)


def test_wasserstein_losses_are_mean_y_times_score():
    # critic: -(mean(+1 * [3, 1])) - (mean(-1 * [0.5, -0.5])) = -2 + 0 = -2
    loss = get_loss("wasserstein").d_loss(t(3.0, 1.0), t(0.5, -0.5), t(1.0, 1.0), t(-1.0, -1.0))
    assert loss.item() == pytest.approx(-2.0)
    assert get_loss("wasserstein").g_loss(t(0.5, 1.5), t(1.0, 1.0)).item() == pytest.approx(-1.0)


def test_hinge_losses():
    # real [2, 0.5]: relu(1-2)=0, relu(0.5)=0.5 -> 0.25; fake [-2, 0]: relu(1-2)=0, relu(1)=1 -> 0.5
    loss = get_loss("hinge").d_loss(t(2.0, 0.5), t(-2.0, 0.0), t(1.0, 1.0), t(-1.0, -1.0))
    assert loss.item() == pytest.approx(0.75)
    assert get_loss("hinge").g_loss(t(2.0, 0.0), t(1.0, 1.0)).item() == pytest.approx(-1.0)


def test_target_conventions():
    assert {name: (l.real_target, l.fake_target) for name, l in LOSSES.items()} == {
        "minimax": (1.0, 0.0),
        "bce": (1.0, 0.0),
        "lsgan": (1.0, 0.0),
        "hinge": (1.0, -1.0),
        "wasserstein": (1.0, -1.0),
    }


def test_unknown_loss_names_the_choices():
    with pytest.raises(ValueError, match="unknown loss 'foo'; choose one of minimax, bce"):
        get_loss("foo")


def test_class_loss_is_zero_without_a_head_and_cross_entropy_with_one():
    assert class_loss(None, torch.tensor([1])) == 0.0
    logits = torch.tensor([[0.0, 0.0]])
    assert class_loss(logits, torch.tensor([1])).item() == pytest.approx(math.log(2))


def test_gradient_penalty_of_a_linear_critic():
    # C(x) = sum(w * x) has gradient w everywhere: penalty = weight * (||w|| - 1)^2
    w = torch.full((1, 1, 2, 2), 1.0)  # ||w|| = 2

    def critic(x, labels):
        return (x * w).flatten(1).sum(1), None

    real, fake = torch.randn(4, 1, 2, 2), torch.randn(4, 1, 2, 2)
    assert gradient_penalty(critic, real, fake, None, weight=10.0).item() == pytest.approx(10.0)
