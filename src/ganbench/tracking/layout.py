"""The layout of ganbench's MLflow record, in one place: roles, tags, artifact paths, checkpoint keys.

Whatever writes a run and whatever reads it back (the evaluator, the report, re-scoring, the sweep
callbacks) name these constants instead of spelling the strings, so the two sides cannot drift apart.
"""

from __future__ import annotations

import re

# --- roles: tag ``role`` says what a run is; training runs carry none.
ROLE_TAG = "role"
ROLE_SWEEP = "sweep"  # a multirun's parent run
ROLE_CLASSIFIER = "classifier"  # the auxiliary classifier's own run
ROLE_REFERENCE = "reference"  # the real-data reference row
NOT_TRAINING = (ROLE_SWEEP, ROLE_CLASSIFIER, ROLE_REFERENCE)

# --- tags
PARENT_TAG = "mlflow.parentRunId"
RUN_NAME_TAG = "mlflow.runName"
GIT_COMMIT_TAG = "mlflow.source.git.commit"
GIT_DIRTY_TAG = "git.dirty"  # "true" when the code (src, conf, sweeps) had uncommitted changes; the diff is logged
UNCOMMITTED_DIFF_ARTIFACT = "code/uncommitted.diff"
PRESET_TAG = "preset"
OVERRIDES_TAG = "overrides"  # a sweep job's own overrides, e.g. "model=dcgan seed=1"
COMMAND_TAG = "command"
ERROR_TAG = "error"  # why a run FAILED
KILLED_TAG = "killed"  # why a run was KILLED
DIVERGED_TAG = "diverged"  # a FAILED run that diverged (NaN loss, collapse)
RESUMED_TAG = "resumed_from_step"
RESCORED_TAG = "rescored"
INCEPTION_SKIPPED_TAG = "inception_skipped"
MEASURED_PREFIX = "measured."  # what an evaluation was measured on: measured.<key>
REFERENCE_TAG = "reference"  # "real" on the real-data reference run
REFERENCE_KEY_TAG = "reference_key"
CLASSIFIER_SHA_TAG = "classifier_sha256"
SWEEP_SUMMARY_TAG = "sweep.summary"
GRID_AXES = ("model", "loss", "stabilize", "dataset", "noise")  # each a tag on every training run, with ``seed``
# "true" on a run trained on its held-out split too (dataset.train_with_test): its held-out metrics saw training images.
HELDOUT_SEEN_TAG = "data.heldout_seen"

# --- artifacts of a training run
CONFIG_ARTIFACT = "config.yaml"
DATA_FILES_ARTIFACT = "data_files.json"
SAMPLES_DIR = "samples"
ANIMATION_FILE = "training.gif"  # under SAMPLES_DIR
LOSS_CURVES_ARTIFACT = "plots/loss_curves.png"
CHECKPOINT_DIR = "checkpoints"
CHECKPOINT_FILE = "final.pt"
CHECKPOINT_ARTIFACT = f"{CHECKPOINT_DIR}/{CHECKPOINT_FILE}"
SAMPLE_GRID_PATTERN = re.compile(rf"{SAMPLES_DIR}/epoch_(\d+)\.png")
JOBS_ARTIFACT = "sweep/jobs.json"  # a sweep parent's list of its jobs' outcomes


def sample_grid_artifact(epoch: int) -> str:
    """Where the fixed-noise sample grid after ``epoch`` epochs goes: ``samples/epoch_007.png``."""
    return f"{SAMPLES_DIR}/epoch_{epoch:03d}.png"


def eval_artifact_dir(step: int) -> str:
    """Where an evaluation at generator step ``step`` logs its tables and figures."""
    return f"eval/step_{step:07d}"


def rescore_artifact_dir(stamp: str) -> str:
    """Where ``python -m ganbench.evaluate`` logs a re-scoring made at ``stamp``."""
    return f"eval/rescore_{stamp}"


REFERENCE_ARTIFACT_DIR = "eval/reference"

# --- checkpoint payloads (train/checkpoint.py writes them; re-scoring and sampling read them)
# Keys both kinds hold:
CKPT_KIND = "kind"  # "resume" (to continue training) or "final" (the trained generator)
CKPT_RUN_ID = "run_id"  # the MLflow run the checkpoint belongs to (resume checkpoints)
CKPT_CONFIG = "config"
CKPT_STEP = "step"
CKPT_EPOCH = "epoch"
CKPT_DISCRIMINATOR = "discriminator"
# The final checkpoint's (checkpoints/final.pt, logged to the run); a resume checkpoint's other keys (G itself,
# optimisers, random states) are train/resume.py's own and read nowhere else.
CKPT_GENERATOR = "generator"  # the generator that samples: the EMA of G when stabilize=ema, else G
CKPT_GENERATOR_RAW = "generator_raw"  # G's own trained weights
CKPT_NUM_CLASSES = "num_classes"

# --- appended for the report (ganbench.report)
SEED_TAG = "seed"  # on every training run, beside the GRID_AXES tags
SWEEP_OVERRIDES_TAG = "sweep.overrides"  # a sweep parent's grid, e.g. "model=dcgan,wgan seed=0,1,2"
REFERENCE_REAL = "real"  # the value of REFERENCE_TAG on the real-data reference run
JOB_INVALID = "INVALID"  # the status, in JOBS_ARTIFACT, of a sweep job that never started a run
REPORT_ARTIFACT_DIR = "report"  # where ganbench.report logs its files on the sweep's parent run

# --- the real-data reference run

# --- liveness (tracking/lease.py) and identity of runs and sweeps
LEASE_HOST_TAG = "lease.host"
LEASE_PID_TAG = "lease.pid"
LEASE_UNTIL_TAG = "lease.until"  # epoch seconds until which the run's process is known to live
LEASE_BEAT_TAG = "lease.beat"  # epoch seconds of the last heartbeat (for "last heartbeat N s ago")
RUN_KEY_TAG = "run_key"  # what a run trains (config hash, as its checkpoint folder): the same job has the same key
SWEEP_IDENTITY_TAG = "sweep.identity"  # a sweep's grid and config, hashed: a re-run of the sweep finds its parent

# --- MLflow objects a training run logs besides artifacts
GENERATOR_MODEL_NAME = "generator"  # the logged MLflow model (mlflow.pytorch.load_model(<its models:/ URI>))
GENERATOR_MODEL_TAG = "generator_model_uri"  # that URI, on the run
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"  # MLflow 3's UI opens a custom_model_development experiment on its runs
EXPERIMENT_KIND = "custom_model_development"
SWEEP_ARTIFACT_DIR = "sweep"

# --- appended for memorisation (ganbench.evaluate.neighbours)
NEAREST_PAIRS_FILE = "nearest_pairs.png"  # under an evaluation's artifact dir: each closest sample beside its nearest training image
BN_MODE_MEASURED = "bn_mode"  # measured.bn_mode: the BatchNorm statistics the samples were drawn with (eval.bn_mode)
