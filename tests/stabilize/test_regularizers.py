"""The techniques of current GAN work, each against a hand-worked case: EMA, R1, DiffAugment, LeCam, bCR, mode seeking."""

import pytest
import torch
from torch import nn

from ganbench.stabilize import TrickSet
from ganbench.stabilize.bcr import BalancedConsistency
from ganbench.stabilize.diffaug import BACKGROUND, DiffAugment, cutout, translate
from ganbench.stabilize.ema import GeneratorEMA
from ganbench.stabilize.lecam import LeCam
from ganbench.stabilize.mode_seeking import ModeSeeking, mode_seeking_term, paired_labels
from ganbench.stabilize.r1 import R1, r1_penalty


class Scalar(nn.Module):
    """A 'generator' with one weight and one BatchNorm-like buffer."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor([value]))
        self.register_buffer("running_mean", torch.tensor([value]))


def test_ema_after_two_updates_is_the_hand_worked_average_and_copies_buffers():
    g = Scalar(1.0)
    ema = GeneratorEMA(g, decay=0.5, start=0)
    for value in (3.0, 5.0):
        with torch.no_grad():
            g.w.fill_(value)
            g.running_mean.fill_(value * 10)
        ema.update(g)
    assert ema.module.w.item() == pytest.approx(0.5 * (0.5 * 1 + 0.5 * 3) + 0.5 * 5)  # 3.5
    assert ema.module.running_mean.item() == 50.0  # copied, not averaged
    late = GeneratorEMA(Scalar(1.0), decay=0.5, start=1)
    g = Scalar(3.0)
    late.update(g)  # before the start: a copy
    g.w.data.fill_(5.0)
    late.update(g)
    assert late.module.w.item() == pytest.approx(4.0) and not late.module.w.requires_grad
    again = GeneratorEMA(Scalar(0.0), decay=0.5, start=1)
    again.load_state_dict(late.state_dict())  # as a resume restores it
    assert again.module.w.item() == 4.0 and again.updates == 2


class Linear(nn.Module):
    """A linear critic D(x) = w . x + b, returning (logits, no class head)."""

    def __init__(self, size: int = 4) -> None:
        super().__init__()
        self.fc = nn.Linear(size * size, 1)

    def forward(self, x, labels):
        return self.fc(x.flatten(1)).squeeze(1), None


def test_r1_of_a_linear_critic_is_gamma_half_the_squared_weight_norm():
    torch.manual_seed(0)
    d = Linear()
    real = torch.randn(8, 1, 4, 4)
    expected = 0.5 * 10.0 * d.fc.weight.pow(2).sum().item()  # the gradient is w at every image
    assert r1_penalty(d, real, torch.zeros(8, dtype=torch.long), gamma=10.0).item() == pytest.approx(expected, rel=1e-5)
    lazy = R1(gamma=10.0, every=2)
    values = [float(torch.as_tensor(lazy(d, real, real, None, None, None, None)).detach()) for _ in range(4)]
    assert values == pytest.approx([2 * expected, 0.0, 2 * expected, 0.0], rel=1e-5)  # every 2nd update, scaled by 2


def test_translation_moves_pixels_fills_with_background_and_keeps_gradients():
    x = torch.full((64, 1, 8, 8), BACKGROUND)
    x[:, 0, 4, 4] = 1.0  # one bright pixel per image
    x.requires_grad_(True)
    moved = translate(x, ratio=0.125, generator=torch.Generator().manual_seed(0))  # shifts of -1, 0 or +1 pixel
    bright = (moved[:, 0] == 1.0).nonzero()[:, 1:]
    assert len(bright) == 64 and (bright - 4).abs().max() == 1 and (bright != 4).any()  # every pixel moved by <= 1
    assert ((moved == BACKGROUND) | (moved == 1.0)).all()
    moved[:, 0, :, :].sum().backward()  # the gradient reaches the input: each output pixel reads one input pixel
    assert x.grad is not None and x.grad[:, 0, 4, 4].eq(1).all()


def test_cutout_sets_a_half_size_square_to_the_background():
    x = torch.ones(16, 1, 8, 8, requires_grad=True)
    out = cutout(x, ratio=0.5, generator=torch.Generator().manual_seed(1))
    cut = (out == BACKGROUND).flatten(1).sum(1)
    assert (cut <= 16).all() and (cut >= 4).all() and (cut == 16).any()  # 4x4 squares, clipped at the edges
    out.sum().backward()
    assert torch.equal(x.grad, (out != BACKGROUND).float())


def test_diffaug_is_one_input_transform_and_is_refused_with_flips():
    aug = TrickSet({"diffaug": {"policies": ["translation"], "translation": 0.125, "cutout": 0.5}}).input_transforms(10)
    assert len(aug) == 1 and isinstance(aug[0], DiffAugment)
    (problem,) = TrickSet({"diffaug": {"policies": ["flip"], "translation": 0.125, "cutout": 0.5}}).problems()
    assert "no flips" in problem


def test_lecam_on_hand_worked_outputs():
    reg = LeCam(weight=1.0, decay=0.5)
    real, fake = torch.tensor([2.0, 4.0]), torch.tensor([-1.0, 1.0])
    # First batch: anchors are its means (real 3, fake 0): relu(real - 0)^2 = [4, 16] -> 10; relu(3 - fake)^2 = [16, 4] -> 10
    assert reg(None, None, None, None, None, real, fake).item() == pytest.approx(20.0)
    # Second batch: anchors move halfway to its means (real 1, fake 1): a_real 2, a_fake 0.5
    real, fake = torch.tensor([1.0, 1.0]), torch.tensor([1.0, 1.0])
    assert reg(None, None, None, None, None, real, fake).item() == pytest.approx(0.25 + 1.0)
    assert (reg.real_anchor, reg.fake_anchor) == (2.0, 0.5)


def test_lecam_anchors_and_lazy_r1_phase_carry_over_to_a_fresh_term_through_its_state():
    reg = LeCam(weight=1.0, decay=0.5)
    reg(None, None, None, None, None, torch.tensor([2.0, 4.0]), torch.tensor([-1.0, 1.0]))  # anchors 3 and 0
    again = LeCam(weight=1.0, decay=0.5)
    again.load_state_dict(reg.state_dict())  # as a resume checkpoint restores it
    real, fake = torch.tensor([1.0, 1.0]), torch.tensor([1.0, 1.0])
    assert again(None, None, None, None, None, real, fake).item() == pytest.approx(0.25 + 1.0)  # as the second batch above
    torch.manual_seed(0)
    d, real = Linear(), torch.randn(8, 1, 4, 4)
    lazy = R1(gamma=10.0, every=2)
    lazy(d, real, real, None, None, None, None)
    resumed = R1(gamma=10.0, every=2)
    resumed.load_state_dict(lazy.state_dict())
    assert resumed(d, real, real, None, None, None, None) == 0.0  # the second update skips, resumed or not
    assert BalancedConsistency(1.0, 1.0, 0.125).state_dict() == {}  # a stateless term saves nothing


def test_bcr_is_zero_for_a_translation_invariant_critic_and_positive_otherwise():
    class Total(nn.Module):  # sums the image: unchanged by a shift that moves no bright pixel out
        def forward(self, x, labels):
            return (x + 1).flatten(1).sum(1), None

    x = torch.full((8, 1, 8, 8), -1.0)
    x[:, 0, 3:5, 3:5] = 1.0  # a centred blob, never shifted out by 1 pixel
    reg = BalancedConsistency(real_weight=10.0, fake_weight=10.0, translation=0.125)
    logits, _ = Total()(x, None)
    assert reg(Total(), x, x, None, None, logits, logits).item() == pytest.approx(0.0)

    class Corner(nn.Module):  # reads one pixel: a shift changes it
        def forward(self, x, labels):
            return x[:, 0, 3, 3], None

    torch.manual_seed(0)
    logits, _ = Corner()(x, None)
    assert reg(Corner(), x, x, None, None, logits, logits).item() > 0


def test_mode_seeking_term_on_a_hand_worked_batch():
    # Batch of 5: pairs (0, 3) and (1, 4); image 2 has no partner. Images are 1 pixel, noise 2 numbers.
    fake = torch.tensor([0.0, 1.0, 9.0, 0.5, -1.0]).view(5, 1, 1, 1)
    z = torch.tensor([[0.0, 0.0], [1.0, 1.0], [7.0, 7.0], [1.0, 3.0], [1.0, 0.0]])
    d_image = (0.5 + 2.0) / 2  # |0 - 0.5|, |1 - (-1)|
    d_noise = (1.0 + 3.0 + 0.0 + 1.0) / 4  # |0-1|, |0-3|, |1-1|, |1-0|
    assert mode_seeking_term(z, fake, eps=0.0).item() == pytest.approx(d_noise / d_image)
    assert ModeSeeking(weight=2.0, eps=1.0)(z, fake, None).item() == pytest.approx(2.0 / (d_image / d_noise + 1.0))
    # Collapse (both halves draw the same image) costs 1 / eps; a batch of one has no pair and costs nothing.
    same = torch.zeros(4, 1, 2, 2)
    assert mode_seeking_term(torch.randn(4, 3), same, eps=1e-5).item() == pytest.approx(1e5)
    assert mode_seeking_term(torch.randn(1, 3), torch.zeros(1, 1, 2, 2), eps=1e-5).item() == 0.0


def test_mode_seeking_pairs_the_fakes_labels():
    draw = paired_labels(lambda n: torch.arange(10, 10 + n))
    assert draw(6).tolist() == [10, 11, 12, 10, 11, 12]
    assert draw(5).tolist() == [10, 11, 12, 10, 11]
    tricks = TrickSet({"mode_seeking": {"weight": 1.0, "eps": 1e-5}})
    assert tricks.label_sampler(lambda n: torch.arange(n))(4).tolist() == [0, 1, 0, 1]
    assert len(tricks.generator_regularizers()) == 1 and tricks.regularizers() == []
    (problem,) = TrickSet({"mode_seeking": {"weight": 0, "eps": 1e-5}}).problems()
    assert "stabilize.mode_seeking.weight=0 is invalid" in problem
