"""Several GPUs in one job: decide how training spreads over them.

This module only decides (no Keras, TensorFlow or JAX import); ``model/`` applies the
plan. With more than one GPU visible to the job:

- JAX backend: ``keras.distribution.DataParallel(devices=plan.devices)`` set with
  ``keras.distribution.set_distribution`` before the model is built; each batch is
  split across the GPUs and the weights are replicated.
- TensorFlow backend: ``tf.distribute.MirroredStrategy(plan.devices)``; the model is
  built and compiled inside ``strategy.scope()``.
- Other backends, or one GPU or none: a single device, as usual.

``--batch-size`` stays the batch per GPU: the global batch is
``batch_size * plan.replicas`` (:func:`global_batch_size`), so adding GPUs makes
epochs shorter rather than changing what each GPU sees.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

SINGLE = "single"
DATA_PARALLEL = "data_parallel"
MIRRORED = "mirrored"


@dataclass(frozen=True)
class DistributionPlan:
    """How a training uses the devices it sees.

    Attributes
    ----------
    kind : {"single", "data_parallel", "mirrored"}
        One device; Keras' ``DataParallel`` (JAX); or TensorFlow's ``MirroredStrategy``.
    devices : tuple of str
        The GPU device names to use (empty for "single": the backend's default device).
    reason : str
        Why, in words (for the log).
    """

    kind: str
    devices: tuple[str, ...] = ()
    reason: str = ""

    @property
    def replicas(self) -> int:
        """How many copies of the model train side by side (1 for "single")."""
        return max(1, len(self.devices)) if self.kind != SINGLE else 1


def is_gpu(device: str) -> bool:
    """True for a GPU device name of JAX/Keras (``gpu:0``, ``cuda:0``) or TF (``/device:GPU:0``)."""
    return re.search(r"(^|[:/])(gpu|cuda)(:|$)", device.lower()) is not None


def job_gpu_count(environ: Mapping[str, str] | None = None) -> int | None:
    """GPUs slurm gave this job, from its environment; None outside a GPU job.

    Reads ``SLURM_GPUS_ON_NODE``, then ``SLURM_GPUS_PER_NODE`` (``2`` or ``a100:2``),
    then ``SLURM_JOB_GPUS``/``CUDA_VISIBLE_DEVICES`` (``0,1``).
    """
    env = os.environ if environ is None else environ
    for key in ("SLURM_GPUS_ON_NODE", "SLURM_GPUS_PER_NODE"):
        value = env.get(key, "").strip()
        match = re.fullmatch(r"(?:[\w-]+:)?(\d+)", value)
        if match:
            return int(match.group(1))
    for key in ("SLURM_JOB_GPUS", "CUDA_VISIBLE_DEVICES"):
        value = env.get(key)
        if value is None:
            continue
        items = [v for v in value.split(",") if v.strip() and v.strip() != "NoDevFiles"]
        return len(items)
    return None


def plan_distribution(
    backend: str, visible: Sequence[str], requested: int | None = None
) -> DistributionPlan:
    """Choose how to train on the `visible` devices.

    Parameters
    ----------
    backend : str
        ``keras.backend.backend()``: "jax", "tensorflow" or "torch".
    visible : sequence of str
        Device names the backend sees (``keras.distribution.list_devices()`` for JAX,
        ``[d.name for d in tf.config.list_logical_devices()]`` for TensorFlow).
    requested : int, optional
        GPUs the job asked for (:func:`job_gpu_count`); fewer are used when fewer are
        visible, and no more than this when more are visible.

    Returns
    -------
    DistributionPlan
    """
    gpus = [d for d in visible if is_gpu(d)]
    n = len(gpus) if requested is None else min(int(requested), len(gpus))
    if n <= 1:
        where = "one GPU" if n == 1 else "no GPU"
        return DistributionPlan(SINGLE, (), f"{where} visible to the job: a single device")
    used = tuple(gpus[:n])
    if backend == "jax":
        return DistributionPlan(DATA_PARALLEL, used, f"{n} GPUs with JAX: keras DataParallel")
    if backend == "tensorflow":
        return DistributionPlan(MIRRORED, used, f"{n} GPUs with TensorFlow: MirroredStrategy")
    return DistributionPlan(
        SINGLE, (), f"{n} GPUs, but the {backend} backend is trained on one device here"
    )


def global_batch_size(batch_size: int, plan: DistributionPlan) -> int:
    """The batch the input pipeline makes: `batch_size` per GPU times the replicas."""
    return int(batch_size) * plan.replicas
