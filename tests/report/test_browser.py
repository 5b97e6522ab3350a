"""The leaderboard HTML in a real headless Chromium at a laptop's 1400 px: the page is no wider than the window,
every image loads, and a sample grid opens enlarged. Skipped only when no ``chromium`` binary exists
(``.ci/run`` installs it); no Python packages beyond the project's: Chromium's ``--dump-dom`` returns the page after
a small probe script has written what it measured into the DOM."""

from __future__ import annotations

import io
import math
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from ganbench.report import Loaded, RunRecord, build, to_html
from ganbench.report.columns import EVAL_METRICS

WIDTH, HEIGHT = 1400, 900
CHROMIUM = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser")) if p), None)
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium binary on PATH (install it: apt-get install -y chromium; .ci/run does)"
)

# What a real evaluation tags its run with (ganbench.evaluate.record): the same for every run, so said once.
MEASURED = {
    "measured.num_samples": "1000", "measured.reference_split": "train", "measured.reference_images": "5000",
    "measured.feature_extractor": "ganbench-classifier", "measured.classifier_sha256": "3f" * 32,
    "measured.inception_num_samples": "5000", "measured.inception_extractor": "inception-v3-compat",
    "measured.heldout_images": "2000", "measured.heldout_split": "test", "measured.memorization_train_images": "20000",
    "measured.memorization_quantile": "0.05", "measured.memorization_heldout_images": "2000",
    "measured.density_neighborhood": "5", "measured.fid_inf": "fit over 5 sample counts, 500 to 1,000",
}
# Long configuration labels, as a grid over several tricks and an extra swept key gives them.
CONFIGS = [
    ("dcgan", "bce", "spectral_norm+label_smoothing", "0.0002"),
    ("dcgan", "hinge", "spectral_norm+instance_noise+label_smoothing", "0.0002"),
    ("wgan_gp", "wasserstein", "gradient_penalty", "0.0001"),
    ("cgan_projection", "hinge", "spectral_norm+ttur", "0.0002"),
    ("acgan", "bce", "none", "0.0002"),
    ("sngan_resnet", "hinge", "spectral_norm+differentiable_augment", "0.0001"),
    ("dcgan", "lsgan", "instance_noise", "0.0001"),
]
SEEDS = (0, 1, 2)


def digit_grid(config: int, seed: int, per_class: int = 10, size: int = 32) -> bytes:
    """A 10 x 10 grid of 32 px digit-like cells (a row per class, as ``sample_grid`` lays them out) as PNG bytes."""
    pad = 2
    side = pad + per_class * (size + pad)
    grid = Image.new("L", (side, side), 128)
    draw = ImageDraw.Draw(grid)
    for row in range(10):
        for col in range(per_class):
            x, y = pad + col * (size + pad), pad + row * (size + pad)
            draw.rectangle((x, y, x + size - 1, y + size - 1), fill=0)
            jitter = (col * 7 + config * 3 + seed) % 5 - 2
            cell = Image.new("L", (8, 12), 0)
            ImageDraw.Draw(cell).text((1 + jitter // 2, 0), str(row), fill=255)
            grid.paste(cell.resize((size - 8, size - 2), Image.Resampling.BILINEAR), (x + 4 + jitter, y + 1))
    buf = io.BytesIO()
    grid.save(buf, format="PNG")
    return buf.getvalue()


def metric_values(config: int, seed: int) -> dict[str, float]:
    q = 1.0 + 0.35 * config + 0.08 * math.sin(seed * 2.1 + config)  # worse with the config index, a little noise
    return {
        "fid_clf": 12.5 * q, "kid_clf": 0.0123 * q, "is_clf": 9.6 / q, "precision_clf": 0.91 / q, "recall_clf": 0.83 / q,
        "gen_accuracy": 0.97 / q, "intra_fid_clf": 31.4 * q, "cas": 0.94 / q, "modes_covered": 10 - config // 3,
        "mode_kl": 0.0042 * q, "fid_inception": 48.2 * q, "kid_inception": 0.0311 * q, "is_inception": 2.31 / q,
        "label_kl": 0.012 * q, "density_clf": 0.95 / q, "coverage_clf": 0.88 / q, "memorization_clf": 0.1 * q,
        "mifid_clf": 12.5 * q, "fid_inf_clf": 11.9 * q,
    }


def realistic_loaded() -> Loaded:
    """Seven configurations x three seeds with every evaluation metric, a failed row, a reference run, grids and curves."""
    runs, samples, curves = [], {}, {}
    for c, (model, loss, stabilize, lr) in enumerate(CONFIGS):
        for seed in SEEDS:
            failed = c == len(CONFIGS) - 1
            tags = {"model": model, "loss": loss, "stabilize": stabilize, "dataset": "hoda", "noise": "normal",
                    "seed": str(seed), "overrides": f"model={model} loss={loss} stabilize={stabilize} optim.lr={lr} seed={seed}",
                    **MEASURED}
            if failed:
                tags["diverged"] = f"non-finite generator loss at step {40 + seed}: NaN in the discriminator logits"
            run = RunRecord(run_id=f"{c:02d}{seed:02d}" + "ab" * 14, name=f"{model}-{stabilize}-s{seed}",
                            status="FAILED" if failed else "FINISHED", start_time=100 * c + seed, tags=tags,
                            params={"eval.num_samples": "1000", "eval.reference_split": "train"},
                            metrics={} if failed else metric_values(c, seed))
            runs.append(run)
            samples[run.run_id] = digit_grid(c, seed)
            curves[run.run_id] = {
                "d_loss": [(s, 1.4 - 0.3 * math.log1p(s / 50) + 0.02 * c) for s in range(0, 2000, 20)],
                "g_loss": [(s, 0.7 + 0.2 * math.log1p(s / 50) + 0.03 * seed) for s in range(0, 2000, 20)],
                "fid_clf": [(s, 80.0 / (1 + s / 300) + 12.5 * (1 + 0.35 * c)) for s in range(200, 2001, 200)],
            }
    reference = RunRecord(run_id="ref" + "cd" * 14, name="reference-real-hoda", status="FINISHED", start_time=1,
                          tags={"reference": "real", "role": "reference", "dataset": "hoda", **MEASURED}, params={},
                          metrics={m: v for m, v in metric_values(0, 0).items()} | {"fid_clf": 0.42, "kid_clf": 0.0001})
    board = build(runs, "fid_clf", experiment="ganbench", tracking_uri="sqlite:///mlruns/ganbench.db",
                  references=[reference])
    return Loaded(board, samples, curves)


# Runs in the page after load: what a person would see, written into <body data-*> for --dump-dom to carry out.
PROBE = """<script>
addEventListener("load", () => {
  const d = document.body.dataset, root = document.documentElement;
  d.scrollwidth = root.scrollWidth; d.clientwidth = root.clientWidth; d.innerwidth = innerWidth;
  const imgs = [...document.images].filter(i => i.getAttribute("src"));
  d.images = imgs.length; d.brokenimages = imgs.filter(i => !(i.complete && i.naturalWidth > 0)).length;
  d.wideelements = [...document.body.querySelectorAll("*")].filter(e => e.getBoundingClientRect().right > root.clientWidth + 0.5
      && !e.closest(".table-scroll")).map(e => e.tagName + "." + e.className).slice(0, 5).join(" ");
  const config = document.querySelector("#leaderboard tbody td.config");
  d.configposition = config ? getComputedStyle(config).position : "none";
  const box = document.querySelector("#leaderboard").closest(".table-scroll");
  d.boxscrolls = box.scrollWidth > box.clientWidth; box.scrollLeft = box.scrollWidth;  // to the last metric
  d.configleft = config ? Math.round(config.getBoundingClientRect().left - box.getBoundingClientRect().left) : -1;
  box.scrollLeft = 0;
  d.headers = [...document.querySelectorAll("#leaderboard thead th")].map(th => th.textContent.replace(/\s+/g, " ").trim()).join("|");
  const zoom = document.querySelector("#leaderboard button.zoom"), thumb = zoom && zoom.querySelector("img");
  if (zoom) zoom.click();
  const dialog = document.querySelector("dialog#enlarged"), big = dialog && dialog.querySelector("img");
  const done = () => {
    d.dialogopen = !!(dialog && dialog.open);
    d.enlargedwidth = big ? Math.round(big.getBoundingClientRect().width) : 0;
    d.thumbwidth = thumb ? Math.round(thumb.getBoundingClientRect().width) : 0;
    d.enlargednatural = big ? big.naturalWidth : 0;
    if (location.hash !== "#open" && dialog && dialog.open) dialog.close();
    d.probed = "yes";
  };
  if (big && !big.complete) big.addEventListener("load", done); else done();
});
</script>"""


class BodyData(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.data: dict[str, str] = {}

    def handle_starttag(self, tag, attrs):
        if tag == "body":
            self.data = {k[5:]: v or "" for k, v in attrs if k.startswith("data-")}


def chromium(url: str, profile: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
               f"--user-data-dir={profile}", f"--window-size={WIDTH},{HEIGHT}", "--virtual-time-budget=5000", *extra, url]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env={**os.environ, "HOME": str(profile)})


def probe(page: Path, tmp: Path) -> dict[str, str]:
    probed = tmp / "probed.html"
    probed.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    done = chromium(probed.as_uri(), tmp / "profile", "--dump-dom")
    parser = BodyData()
    parser.feed(done.stdout)
    assert parser.data.get("probed") == "yes", f"the probe did not run in chromium: {done.stderr[-2000:]}"
    return parser.data


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("browser") / "leaderboard.html"
    out.write_text(to_html(realistic_loaded()), encoding="utf-8")
    return out


def test_the_realistic_case_has_every_metric_and_long_labels(page):
    text = page.read_text(encoding="utf-8")
    for m in metric_values(0, 0):
        assert f"<code>{m}</code>" in text, m  # each metric is in the table and in what was measured
    assert set(metric_values(0, 0)) >= {"fid_clf", "kid_clf", "is_clf", "precision_clf", "recall_clf", "gen_accuracy",
                                        "intra_fid_clf", "cas", "modes_covered", "mode_kl"}
    assert set(metric_values(0, 0)) <= set(EVAL_METRICS)  # all shown by default, as in a real report
    assert "spectral_norm+instance_noise+label_smoothing" in text and "optim.lr=0.0002" in text
    assert len(re.findall(r'src="data:image/png;base64,', text)) >= len(CONFIGS) - 1 + 3


@needs_chromium
def test_the_page_fits_1400_px_and_every_image_loads(page, tmp_path):
    data = probe(page, tmp_path)
    assert 0 < int(data["innerwidth"]) <= WIDTH
    assert int(data["scrollwidth"]) <= int(data["clientwidth"]) <= WIDTH, f"page wider than the window; wide: {data['wideelements']}"
    assert data["wideelements"] == ""
    assert int(data["images"]) >= len(CONFIGS) - 1 + 3 and data["brokenimages"] == "0"
    # the configuration column stays in view while the metrics scroll inside the table's own box
    assert data["configposition"] == "sticky"
    assert data["boxscrolls"] == "true" and 0 < int(data["configleft"]) < 200  # still in view at the last metric
    headers = data["headers"].split("|")
    assert "fid_clf ↓" in headers and "is_clf ↑" in headers and not any("samples" in h and "vs" in h for h in headers)
    assert max(len(h) for h in headers) <= 20, headers
    # a click on a sample grid opens it enlarged, loaded
    assert data["dialogopen"] == "true" and int(data["enlargednatural"]) > 0
    assert int(data["enlargedwidth"]) >= 3 * int(data["thumbwidth"]) > 0


@needs_chromium
def test_screenshots_of_the_page_and_of_an_enlarged_grid(page, tmp_path):
    """Screenshots to look at (kept in GANBENCH_SCREENSHOTS when set): the page, and the page after a click on a grid,
    which must show the enlarged grid over it (a visibly different picture), not the same page."""
    keep = Path(os.environ.get("GANBENCH_SCREENSHOTS", tmp_path))
    keep.mkdir(parents=True, exist_ok=True)
    probed = tmp_path / "leaderboard.html"
    probed.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    for name, url in (("leaderboard.png", probed.as_uri()), ("enlarged.png", probed.as_uri() + "#open")):
        done = chromium(url, tmp_path / f"profile-{name}", f"--screenshot={keep / name}")
        shot = keep / name
        assert shot.exists(), done.stderr[-2000:]
        with Image.open(shot) as image:
            assert image.size == (WIDTH, HEIGHT)
    with Image.open(keep / "leaderboard.png") as page_shot, Image.open(keep / "enlarged.png") as enlarged_shot:
        plain, opened = (np.asarray(i.convert("L"), dtype=np.float64) for i in (page_shot, enlarged_shot))
    assert np.abs(plain - opened).mean() > 5  # the dialog and its backdrop cover the page
