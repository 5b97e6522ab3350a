"""The nine seed systems: each one's preset, report, the report's length in generator updates, and where we deviate.

The reproduction's own budget per system is in its sweep preset (conf/experiment/reproduce/<key>.yaml); the table
states it next to the report's length, read back from the runs (``train.total_steps``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class System:
    key: str  # conf/experiment/reproduce/<key>.yaml
    preset: str  # conf/experiment/<preset>.yaml, tagged `preset` on every run
    title: str
    report: str  # ../shared/seeds/<file>
    report_updates: int | None  # generator updates of the report's run (None: the report gives no length)
    report_length: str  # the report's length in its own words
    deviations: tuple[str, ...]  # what the preset does differently from the report, and why


SEEDS = "../shared/seeds/"
SYSTEMS = (
    System("s0a", "seed_s0a_dcgan_sign", "S0a DCGAN", "000_28c49e0633e2e0e7.txt", 5000,
           "\"5,000 epochs\", Keras-GAN style: one batch of 32 each",
           ("Sign Digits train split of 1,653 images (the report: about 1,000)", "dropout rate 0.3 (not given)",
            "scored at 28 px (eval.image_size=28), resized with antialiasing, so S0a-d share one feature space")),
    System("s0b", "seed_s0b_dcgan_sign_stable", "S0b stable DCGAN", "000_28c49e0633e2e0e7.txt", 5000,
           "as S0a", ("flip fraction 0.05 (not given)", "as S0a")),
    System("s0c", "seed_s0c_acgan_sign", "S0c ACGAN", "000_28c49e0633e2e0e7.txt", None,
           "not given (trained like S0a)", ("z of 118 so that z + label make the table's 128 inputs", "the class head is not in the report's table",
            "LeakyReLU slope 0.2 and dropout 0.3 (not given)")),
    System("s0d", "seed_s0d_wgan_sign", "S0d WGAN", "000_28c49e0633e2e0e7.txt", None,
           "not given (trained like S0a: 5,000 generator steps)",
           ("clip 0.01, 5 critic steps, RMSprop 5e-5: the original WGAN's (not shown)", "Sign Digits at 28 px (the report's dataset is not named)",
            "ReLU in G, LeakyReLU 0.2 in the critic, dropout 0.3 (not given)")),
    System("s1", "seed_s1_cgan_mnist", "S1 conditional MLP GAN", "001_b06e8be46878b63f.txt", 9375,
           "20 epochs of 60,000 MNIST images at batch 128",
           ("MNIST here is the 10,000-image test split: the report's 9,375 updates are 121 of its epochs"
            " (78 steps each; max_steps ends the last one early)",
            "widths 256-512-1024 / 512-512-512 with dropout 0.4 (not given)")),
    System("s2n", "seed_s2_dcgan_mnist_normal", "S2 DCGAN, normal prior", "002_9dac645690b855c4.txt", 46875,
           "100 epochs of 60,000 MNIST images at batch 128",
           ("Part A's network is not described: Part B's DCGAN is used for Part A's prior comparison",
            "MNIST here is the 10,000-image test split")),
    System("s2u", "seed_s2_dcgan_mnist_uniform", "S2 DCGAN, uniform prior", "002_9dac645690b855c4.txt", 46875,
           "as the normal run", ("U[-1, 1] (the range is not given)", "as the normal run")),
    System("s3", "seed_s3_cgan_hoda", "S3 conditional GAN, Hoda", "003_e3861b18d2c6becc.txt", 27344,
           "about 350 epochs of 80,000 digits at batch 1024 (the code's fit: 30 epochs, 2,344 updates)",
           ("a tanh G on [-1, 1] images instead of a sigmoid G on 0/1 (the same data up to an affine map)",
            "Hoda 'Train 60000.cdb' is not here: RemainingSamples.cdb (22,352) + Test 20000",
            "its 1,000 scored digits are 100 of each class; the report drew the labels at random (94-111 a class)")),
    System("s4", "seed_s4_gan_mnist", "S4 original GAN", "004_d443fc24724140fe.txt", 125000,
           "no stopping rule; the paper's momentum ramp ends at epoch 250 of 500 updates (125,000)",
           ("sizes, initialisation and hyperparameters from the paper's code (the slides give none)",
            "a tanh G on [-1, 1] images",
            "D then G in turn; the paper updates both at once from one forward pass",
            "MNIST here is the 10,000-image test split, which G trains on: the Parzen sigma is chosen on a seeded 1,000 of its"
            " images (eval.parzen_validation) and the log-likelihood scored on 2,000 held out of the same split, digits G saw (the paper scored unseen test digits), so ours is optimistic")),
)
