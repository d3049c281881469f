"""Where work runs: in-process, in a local subprocess, or on slurm (submitit)."""
