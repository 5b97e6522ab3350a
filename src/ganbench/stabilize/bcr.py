"""``bcr``: balanced consistency regularisation (Zhao et al. 2020): D's output should not change under augmentation.

``R = real_weight E[(D(x) - D(T(x)))^2] + fake_weight E[(D(G(z)) - D(T(G(z))))^2]`` with ``T`` a random translation
(DiffAugment's, up to ``translation`` of the image size; no flips, a flipped digit is another digit). Both sides go
through D's own input transforms (instance noise, DiffAugment) when the run has them, as the loss's images do.
"""

from __future__ import annotations

from torch import Tensor

from ganbench.checks import is_number, number_in
from ganbench.stabilize.base import Regularizer, Trick
from ganbench.stabilize.diffaug import translate


class BalancedConsistency(Regularizer):
    def __init__(self, real_weight: float, fake_weight: float, translation: float) -> None:
        self.real_weight, self.fake_weight, self.translation = real_weight, fake_weight, translation

    def __call__(self, discriminator, real, fake, labels, fake_labels, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        real_aug, _ = discriminator(translate(real, self.translation), labels)
        fake_aug, _ = discriminator(translate(fake.detach(), self.translation), fake_labels)
        return (self.real_weight * (real_logits - real_aug).pow(2).mean()
                + self.fake_weight * (fake_logits - fake_aug).pow(2).mean())


class BCRTrick(Trick):
    name = "bcr"

    def problems(self) -> list[str]:
        s, p = self.settings, []
        for key in ("real_weight", "fake_weight"):
            if not is_number(s.get(key)) or s[key] < 0:
                p.append(f"{self.key(key)}={s.get(key)!r} is invalid: it must be a number >= 0")
        number_in(p, self.key("translation"), s.get("translation"), 0, 0.5, low_open=True)
        return p

    def regularizer(self) -> BalancedConsistency:
        s = self.settings
        return BalancedConsistency(float(s["real_weight"]), float(s["fake_weight"]), float(s["translation"]))
