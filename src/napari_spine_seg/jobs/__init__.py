"""Where work runs: in-process, in a local subprocess, or on slurm (submitit).

The functions a widget or the command line needs::

    config = TrainConfig("data/", "models/m.keras", epochs=40)
    job = submit_training(config, options=SlurmOptions(partition="gpu", gpus=1, time_min=120))
    job_status(job.job_id)      # JobStatus(state, epoch, epochs, log_tail, error_line, ...)
    cancel_job(job.job_id)
    list_jobs()                 # every job in the on-disk index
    reattach(job.job_id)        # a Job handle again, e.g. after napari was restarted
"""

from .options import SlurmOptions
from .runner import (
    Job,
    cancel_job,
    job_status,
    list_jobs,
    reattach,
    run_job,
    submit_prediction,
    submit_training,
)
from .spec import JobSpec, prediction_spec, training_spec
from .status import JobStatus

__all__ = [
    "Job",
    "JobSpec",
    "JobStatus",
    "SlurmOptions",
    "cancel_job",
    "job_status",
    "list_jobs",
    "prediction_spec",
    "reattach",
    "run_job",
    "submit_prediction",
    "submit_training",
    "training_spec",
]
