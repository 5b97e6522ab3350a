"""Every checkable claim of the seed reports, as a small function of the systems' logged metrics over seeds.

A check returns a ``Verdict``: reproduced, not reproduced or not checkable, with our numbers and a one-line reason.
The thresholds that turn a report's words into a test ("recognisable", "tends to 1/2") are stated in each claim.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ganbench.reproduce.evidence import SystemRuns, compare, epoch_means, mean, mean_ci, settled_after

REPRODUCED, NOT_REPRODUCED, NOT_CHECKABLE = "reproduced", "not reproduced", "not checkable"
ALPHA = 0.05  # significance of every comparison between systems (Welch's t-test, two-sided)

S0A, S0B, S0C, S0D = "seed_s0a_dcgan_sign", "seed_s0b_dcgan_sign_stable", "seed_s0c_acgan_sign", "seed_s0d_wgan_sign"
S1, S2N, S2U, S3, S4 = "seed_s1_cgan_mnist", "seed_s2_dcgan_mnist_normal", "seed_s2_dcgan_mnist_uniform", "seed_s3_cgan_hoda", "seed_s4_gan_mnist"

# Seed S3's per-class table (precision, recall, F1 in %, support) for 1,000 generated digits.
S3_CLASS_TABLE = {
    0: (99, 100, 99, 95), 1: (99, 100, 100, 103), 2: (91, 100, 95, 97), 3: (94, 93, 94, 101), 4: (100, 90, 95, 94),
    5: (100, 95, 97, 102), 6: (100, 98, 99, 96), 7: (100, 100, 100, 107), 8: (95, 97, 96, 94), 9: (96, 93, 95, 111),
}
CLASSIFIER_SHA = "measured.classifier_sha256"


@dataclass(frozen=True)
class Verdict:
    status: str  # REPRODUCED | NOT_REPRODUCED | NOT_CHECKABLE
    ours: str  # our figures, mean ± 95% CI over seeds
    reason: str  # one line


@dataclass(frozen=True)
class Claim:
    key: str
    systems: tuple[str, ...]  # the presets whose runs it reads
    text: str  # what the report says, in English
    reported: str  # the report's figure
    check: Callable[[Mapping[str, SystemRuns]], Verdict]


CLAIMS: dict[str, Claim] = {}


def claim(key: str, systems: tuple[str, ...], text: str, reported: str) -> Callable:
    """Register the decorated check under ``key``."""
    def register(check: Callable[[Mapping[str, SystemRuns]], Verdict]) -> Callable:
        CLAIMS[key] = Claim(key, systems, text, reported, check)
        return check
    return register


def evaluate(systems: Mapping[str, SystemRuns]) -> dict[str, Verdict]:
    """Every claim's verdict; a system with no finished run makes its claims not checkable."""
    out = {}
    for key, c in CLAIMS.items():
        missing = [s for s in c.systems if not systems.get(s) or not systems[s].runs]
        why = [f"{s}: {'; '.join(systems[s].unfinished)}" for s in missing if systems.get(s) and systems[s].unfinished]
        reason = f"no finished run of {', '.join(missing)}" + (f" ({'; '.join(why)})" if why else "")
        out[key] = Verdict(NOT_CHECKABLE, "–", reason) if missing else c.check(systems)
    return out


# --- shapes of check shared by several claims


def at_least(runs: SystemRuns, metrics: tuple[str, ...], threshold: float) -> Verdict:
    """Reproduced when the mean over seeds of every metric reaches ``threshold``."""
    values = {m: runs.values(m) for m in metrics}
    absent = [m for m, v in values.items() if not v]
    if absent:
        return Verdict(NOT_CHECKABLE, "–", f"{', '.join(absent)} not logged")
    ours = "; ".join(f"{m} {mean_ci(v)}" for m, v in values.items())
    short = [m for m, v in values.items() if mean(v) < threshold]
    if short:
        return Verdict(NOT_REPRODUCED, ours, f"{', '.join(short)} below {threshold:g}")
    return Verdict(REPRODUCED, ours, f"every mean at least {threshold:g}")


def better(systems: Mapping[str, SystemRuns], a: str, b: str, metric: str = "fid_clf", lower_is_better: bool = True) -> Verdict:
    """Reproduced when system ``a`` beats ``b`` on ``metric`` significantly (Welch, ``ALPHA``), both in one feature space."""
    spaces = systems[a].tag_values(CLASSIFIER_SHA) | systems[b].tag_values(CLASSIFIER_SHA)
    if len(spaces) > 1:
        return Verdict(NOT_CHECKABLE, "–", f"{a} and {b} were scored by different classifiers; evaluate both with eval.image_size=")
    va, vb = systems[a].values(metric), systems[b].values(metric)
    if not va or not vb:
        return Verdict(NOT_CHECKABLE, "–", f"{metric} not logged")
    ours = f"{metric} {mean_ci(va)} vs {mean_ci(vb)}"
    if len(va) < 2 or len(vb) < 2:
        return Verdict(NOT_CHECKABLE, ours, f"needs at least 2 seeds a side, has {len(va)} and {len(vb)}")
    result = compare(va, vb, lower_is_better)
    p = "p not computable (no spread)" if result.p is None else f"Welch p={result.p:.2g}"
    if result.a_better and result.p is not None and result.p < ALPHA:
        return Verdict(REPRODUCED, ours, f"better, {p}")
    if result.a_better:
        return Verdict(NOT_REPRODUCED, ours, f"better on average but within the seed noise ({p})")
    return Verdict(NOT_REPRODUCED, ours, f"worse, not better ({p})")


S3_REPORT_EPOCH_STEPS = 80_000 / 1024  # one of seed S3's epochs (Train 60000 + Test 20000 at batch 1024) in steps


def epochs_trained(runs: SystemRuns) -> float:
    """Seed S3's epochs (of its 80,000 digits) the shortest run trained: ganbench's Hoda here has 42,352."""
    steps = [max((s for s, _ in r.histories.get("d_loss", ())), default=0) for r in runs.runs]
    return min(steps, default=0) / S3_REPORT_EPOCH_STEPS


# --- S3: conditional GAN for Persian digits


@claim("s3.gen_accuracy", (S3,), "1,000 generated digits with random labels are classified as the label asked for",
       "97% accuracy")
def s3_gen_accuracy(systems: Mapping[str, SystemRuns]) -> Verdict:
    return at_least(systems[S3], ("gen_accuracy",), 0.97)


@claim("s3.macro_prf", (S3,), "macro precision, recall and F1 of the classifier on the 1,000 generated digits",
       "0.97 / 0.97 / 0.97")
def s3_macro_prf(systems: Mapping[str, SystemRuns]) -> Verdict:
    return at_least(systems[S3], ("gen_macro_precision", "gen_macro_recall", "gen_macro_f1"), 0.97)


@claim("s3.hard_digits", (S3,), "after 30 epochs (of the report's 80,000 digits), digits 4 and 9 were the hardest", "4: 12%, 9: 27% accuracy at epoch 30")
def s3_hard_digits(systems: Mapping[str, SystemRuns]) -> Verdict:
    runs = systems[S3]
    recalls = {c: runs.values(f"gen_recall_{c}") for c in range(10)}
    if any(not v for v in recalls.values()):
        return Verdict(NOT_CHECKABLE, "–", "per-class accuracy (gen_recall_<c>) not logged")
    ours = f"4: {mean_ci(recalls[4], 2)}, 9: {mean_ci(recalls[9], 2)} after {epochs_trained(runs):.3g} epochs"
    if epochs_trained(runs) < 30:
        return Verdict(NOT_CHECKABLE, ours, f"trained {epochs_trained(runs):.3g} of the claim's 30 epochs")
    hardest = sorted(recalls, key=lambda c: mean(recalls[c]))[:2]
    if set(hardest) == {4, 9}:
        return Verdict(REPRODUCED, ours, "4 and 9 have the two lowest per-class accuracies")
    return Verdict(NOT_REPRODUCED, ours, f"the two hardest digits are {hardest[0]} and {hardest[1]}")


@claim("s3.classifier", (S3,), "the report's classifier (a simple ReLU network) is accurate on Hoda",
       "98.5% on its own training data")
def s3_classifier(systems: Mapping[str, SystemRuns]) -> Verdict:
    # The report names no width and publishes no code for it ("a simple neural network of depth 1"), so its network
    # cannot be rebuilt; ganbench's own yardstick is another model, and its accuracy says nothing about the report's.
    values = [float(v) for v in systems[S3].tag_values("measured.classifier_test_accuracy")]
    ours = f"{max(values):.4f} on held-out Hoda test digits (ganbench's CNN, not the report's network)" if values else "–"
    return Verdict(NOT_CHECKABLE, ours, "the report's network is not specified enough to rebuild; ours is shown for "
                                        "comparison (it is the yardstick of the other S3 claims)")


# --- S2: noise prior, small DCGAN


@claim("s2.normal_beats_uniform", (S2N, S2U), "Part A: the normal prior works better than the uniform one",
       "normal works; uniform ends with sparse, thin digits")
def s2_normal_beats_uniform(systems: Mapping[str, SystemRuns]) -> Verdict:
    return better(systems, S2N, S2U)


@claim("s2.uniform_thin", (S2N, S2U), "Part A: the uniform prior ends with sparse, thin digits",
       "sparse, thin digits (no figure)")
def s2_uniform_thin(systems: Mapping[str, SystemRuns]) -> Verdict:
    ratios = {}
    for key, name in ((S2U, "uniform"), (S2N, "normal")):
        runs = systems[key]
        for metric in ("ink_per_digit", "stroke_width"):
            ours, real = runs.values(metric), runs.values(f"{metric}_real")
            if not ours or not real:
                return Verdict(NOT_CHECKABLE, "–", f"{metric} / {metric}_real not logged")
            ratios[name, metric] = [o / r for o, r in zip(ours, real) if r > 0]
    ours = "; ".join(f"{name} {metric} / real {mean_ci(v, 2)}" for (name, metric), v in ratios.items())
    metrics = ("ink_per_digit", "stroke_width")
    if any(len(ratios[name, m]) < 2 for name in ("uniform", "normal") for m in metrics):
        return Verdict(NOT_CHECKABLE, ours, "needs at least 2 seeds a side")
    # A claim about the uniform prior against the normal one: each ratio below real's and below the normal prior's by
    # more than the seed noise (Welch, ALPHA), as every comparison between systems.
    tests = {m: compare(ratios["uniform", m], ratios["normal", m], lower_is_better=True) for m in metrics}
    ps = ", ".join(f"{m} Welch p={'–' if t.p is None else f'{t.p:.2g}'}" for m, t in tests.items())
    below_real = all(mean(ratios["uniform", m]) < 1.0 for m in metrics)
    if below_real and all(t.a_better and t.p is not None and t.p < ALPHA for t in tests.values()):
        return Verdict(REPRODUCED, ours, f"the uniform prior's digits have less ink and thinner strokes than real and "
                                         f"normal-prior digits ({ps})")
    if below_real and all(t.a_better for t in tests.values()):
        return Verdict(NOT_REPRODUCED, ours, f"sparser and thinner than the normal prior's on average, but within the "
                                             f"seed noise ({ps})")
    return Verdict(NOT_REPRODUCED, ours, f"the uniform prior's digits are not both sparser and thinner than real and "
                                         f"normal-prior digits ({ps})")


@claim("s2.part_b_losses", (S2N,), "Part B's DCGAN log at epoch 99 (last batch)", "D 0.29, G 3.22")
def s2_part_b_losses(systems: Mapping[str, SystemRuns]) -> Verdict:
    runs = systems[S2N]
    ours = f"D {mean_ci(runs.values('d_loss'), 2)}, G {mean_ci(runs.values('g_loss'), 2)} at the last step"
    return Verdict(NOT_CHECKABLE, ours, "one batch's losses are not a quality measure; shown for comparison only")


# --- S0: DCGAN, stabilisation, ACGAN, WGAN on Sign Language digits


@claim("s0.stable_beats_normal", (S0A, S0B), "S0b: label smoothing and noisy labels make the DCGAN's samples clearly better",
       "clearly better samples (no figure)")
def s0_stable_beats_normal(systems: Mapping[str, SystemRuns]) -> Verdict:
    return better(systems, S0B, S0A)


@claim("s0.wgan_worse", (S0A, S0D), "S0d: the WGAN looked worse than the cross-entropy DCGAN", "worse (no figure)")
def s0_wgan_worse(systems: Mapping[str, SystemRuns]) -> Verdict:
    return better(systems, S0A, S0D)


RECOGNISABLE = 0.8  # "recognisable": the classifier names the asked-for digit in at least 80% of its samples


@claim("s0.acgan_234", (S0C,), "S0c: the ACGAN draws recognisable digits for the classes 2, 3 and 4",
       "recognisable 2, 3, 4 (sample grids)")
def s0_acgan_234(systems: Mapping[str, SystemRuns]) -> Verdict:
    return at_least(systems[S0C], ("gen_recall_2", "gen_recall_3", "gen_recall_4"), RECOGNISABLE)


# --- S1: conditional MLP GAN


SETTLE_BY = 5  # "after a few epochs": settled by epoch 5 of the report's 20
REPORT_EPOCH_STEPS = 60_000 // 128  # one of the report's epochs (60,000 MNIST images at batch 128) in generator steps


@claim("s1.loss_band", (S1,), "the losses settle into an oscillating band after a few epochs (epochs of the report's "
       "60,000 images; D loss summed over the real and fake batch, Keras-GAN prints half of it)", "a band after a few epochs (loss curves)")
def s1_loss_band(systems: Mapping[str, SystemRuns]) -> Verdict:
    found = []
    for run in systems[S1].runs:
        if "d_loss" not in run.histories or "g_loss" not in run.histories:
            return Verdict(NOT_CHECKABLE, "–", "needs the per-step d_loss and g_loss")
        last = max(s for s, _ in run.histories["d_loss"])
        ends = list(range(REPORT_EPOCH_STEPS, last + 1, REPORT_EPOCH_STEPS))  # ganbench's MNIST epochs are 10,000 images
        if len(ends) < 3:
            return Verdict(NOT_CHECKABLE, "–", f"needs at least 3 of the report's epochs ({3 * REPORT_EPOCH_STEPS} steps), has {last}")
        found.append((run.seed, *(settled_after(epoch_means(run.histories[m], ends)) for m in ("d_loss", "g_loss"))))
    when = lambda k: "never" if k is None else f"epoch {k}"  # noqa: E731
    ours = "; ".join(f"seed {seed}: D settled {when(d)}, G {when(g)}" for seed, d, g in found)
    if all(d is not None and g is not None and max(d, g) <= SETTLE_BY for _, d, g in found):
        return Verdict(REPRODUCED, ours, f"both losses stay in a band from epoch {SETTLE_BY} or earlier")
    return Verdict(NOT_REPRODUCED, ours, f"a loss still drifts after epoch {SETTLE_BY} (or never settles)")


# --- S4: the original GAN


@claim("s4.parzen", (S4,), "Gaussian Parzen-window log-likelihood of MNIST test digits under 10,000 samples",
       "225 ± 2 nats (the paper)")
def s4_parzen(systems: Mapping[str, SystemRuns]) -> Verdict:
    values = systems[S4].values("parzen_ll")
    if not values:
        return Verdict(NOT_CHECKABLE, "–", "parzen_ll not logged (eval.parzen=true)")
    ours = f"{mean_ci(values)} nats"
    if mean(values) >= 225 - 2 * 2:  # within two of the paper's standard errors, or better
        return Verdict(REPRODUCED, ours, "at least the paper's figure, within two of its standard errors")
    return Verdict(NOT_REPRODUCED, ours, "below the paper's 225 by more than two of its standard errors")


HALF_BAND = 0.1  # "D tends to 1/2": D's mean output on real and fake within 0.5 ± 0.1 over the last epoch


@claim("s4.d_half", (S4,), "at the optimum D = 1/2 everywhere: D's output tends to 1/2", "D(x) -> 1/2")
def s4_d_half(systems: Mapping[str, SystemRuns]) -> Verdict:
    last = {}
    for metric in ("d_real", "d_fake"):
        per_run = []
        for run in systems[S4].runs:
            ends = [s for s, _ in run.histories.get("epoch", ())]
            if metric not in run.histories or not ends:
                return Verdict(NOT_CHECKABLE, "–", f"needs the per-step {metric} history")
            per_run.append(epoch_means(run.histories[metric], ends)[-1][0])
        last[metric] = per_run
    ours = f"last epoch: D(real) {mean_ci(last['d_real'], 2)}, D(fake) {mean_ci(last['d_fake'], 2)}"
    if all(abs(mean(v) - 0.5) <= HALF_BAND for v in last.values()):
        return Verdict(REPRODUCED, ours, f"both within 0.5 ± {HALF_BAND}")
    return Verdict(NOT_REPRODUCED, ours, f"not both within 0.5 ± {HALF_BAND}")
