"""Several GPUs in one job: the choice of strategy (the training itself needs GPUs)."""

from __future__ import annotations

import pytest

from napari_spine_seg.jobs.gpus import (
    DATA_PARALLEL,
    MIRRORED,
    SINGLE,
    global_batch_size,
    is_gpu,
    job_gpu_count,
    plan_distribution,
)

JAX_TWO = ["gpu:0", "gpu:1"]
TF_FOUR = ["/device:CPU:0"] + [f"/device:GPU:{i}" for i in range(4)]


def test_gpu_names_of_both_backends():
    assert all(is_gpu(d) for d in ("gpu:0", "cuda:1", "/device:GPU:0", "/physical_device:GPU:1"))
    assert not any(is_gpu(d) for d in ("cpu:0", "/device:CPU:0", "TPU:0", "gpupu:0"))


@pytest.mark.parametrize(
    ("backend", "visible", "requested", "kind", "n"),
    [
        ("jax", JAX_TWO, None, DATA_PARALLEL, 2),
        ("jax", JAX_TWO, 2, DATA_PARALLEL, 2),
        ("jax", JAX_TWO, 1, SINGLE, 1),
        ("jax", ["cpu:0"], None, SINGLE, 1),
        ("jax", ["gpu:0"], 4, SINGLE, 1),  # asked for 4, sees 1
        ("tensorflow", TF_FOUR, None, MIRRORED, 4),
        ("tensorflow", TF_FOUR, 2, MIRRORED, 2),
        ("tensorflow", ["/device:CPU:0"], None, SINGLE, 1),
        ("torch", ["cuda:0", "cuda:1"], None, SINGLE, 1),
    ],
)
def test_strategy_follows_backend_and_gpu_count(backend, visible, requested, kind, n):
    plan = plan_distribution(backend, visible, requested)
    assert plan.kind == kind
    assert plan.replicas == n
    if kind != SINGLE:
        assert plan.devices == tuple(d for d in visible if is_gpu(d))[:n]
        assert str(n) in plan.reason
    assert global_batch_size(8, plan) == 8 * n


@pytest.mark.parametrize(
    ("env", "count"),
    [
        ({}, None),
        ({"SLURM_GPUS_ON_NODE": "4"}, 4),
        ({"SLURM_GPUS_PER_NODE": "a100:2"}, 2),
        ({"SLURM_JOB_GPUS": "0,1,2"}, 3),
        ({"CUDA_VISIBLE_DEVICES": "3"}, 1),
        ({"CUDA_VISIBLE_DEVICES": ""}, 0),
        ({"CUDA_VISIBLE_DEVICES": "NoDevFiles"}, 0),
        ({"SLURM_GPUS_ON_NODE": "2", "CUDA_VISIBLE_DEVICES": "0"}, 2),
    ],
)
def test_gpu_count_of_a_slurm_job(env, count):
    assert job_gpu_count(env) == count
