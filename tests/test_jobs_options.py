"""Slurm options, job scripts and the --slurm arguments: validated, quoted, faithful.

No cluster is needed here; the job scripts are run with bash to prove their quoting.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import pytest

from napari_spine_seg.cli import _slurm_args
from napari_spine_seg.cli import predict as predict_cli
from napari_spine_seg.cli import train as train_cli
from napari_spine_seg.errors import SpineSegError
from napari_spine_seg.jobs import registry
from napari_spine_seg.jobs.logs import epochs_done, error_line, tail
from napari_spine_seg.jobs.options import SlurmOptions, check_line, parse_sbatch_line
from napari_spine_seg.jobs.run import STARTED_NAME, continued
from napari_spine_seg.jobs.run import main as run_main
from napari_spine_seg.jobs.script import render_script
from napari_spine_seg.jobs.spec import (
    JobSpec,
    pick_checkpoint,
    prediction_spec,
    read_spec,
    training_spec,
)
from napari_spine_seg.jobs.status import (
    CANCELLED,
    COMPLETED,
    FAILED,
    PENDING,
    RUNNING,
    TIMEOUT,
    combine_states,
    normalise_slurm_state,
)
from napari_spine_seg.model.config import TrainConfig
from napari_spine_seg.model.predict_config import PredictConfig

# ----------------------------------------------------------------------------- options


def test_default_options_ask_for_one_node_and_a_time_limit():
    options = dict(SlurmOptions().sbatch_options())
    assert options["time"] == "60"
    assert options["nodes"] == "1"
    assert options["cpus-per-task"] == "2"
    assert "gpus-per-node" not in options and "partition" not in options


def test_every_option_becomes_an_sbatch_line():
    opts = SlurmOptions(
        partition="gpu",
        time_min=90,
        cpus=8,
        mem_gb=1.5,
        gpus=2,
        account="lab-7",
        qos="high",
        extra_sbatch=("#SBATCH --constraint=a100", "--exclusive"),
    )
    pairs = opts.sbatch_options()
    assert ("partition", "gpu") in pairs and ("time", "90") in pairs
    assert ("mem", "1536M") in pairs and ("gpus-per-node", "2") in pairs
    assert ("account", "lab-7") in pairs and ("qos", "high") in pairs
    assert ("constraint", "a100") in pairs and ("exclusive", None) in pairs
    assert dict(SlurmOptions(mem_gb=16).sbatch_options())["mem"] == "16G"


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"partition": "gpu;rm -rf ~"}, "not a slurm name"),
        ({"partition": "a b"}, "not a slurm name"),
        ({"account": "$(id)"}, "not a slurm name"),
        ({"qos": ""}, "not a slurm name"),
        ({"time_min": 0}, "between"),
        ({"time_min": 1.5}, "whole number"),
        ({"cpus": -1}, "between"),
        ({"gpus": True}, "whole number"),
        ({"mem_gb": 0}, "positive"),
        ({"mem_gb": "8"}, "number"),
        ({"setup": ("module load cuda\nrm -rf ~",)}, "control character"),
        ({"setup": ("echo \x1b[31m",)}, "control character"),
        ({"setup": ("   ",)}, "empty"),
        ({"setup": "module load cuda"}, "lists of lines"),
        ({"extra_sbatch": ("--constraint a100",)}, "--key=value"),
        ({"extra_sbatch": ("--comment='x'",)}, "--key=value"),
        ({"extra_sbatch": ("-N 2",)}, "--key=value"),
        ({"extra_sbatch": ("2",)}, "--key=value"),
        ({"extra_sbatch": ("--time=5",)}, "use --time"),
        ({"extra_sbatch": ("--output=/tmp/x",)}, "sets it itself"),
        ({"time_min": 1, "signal_delay_s": 90}, "shorter than the time limit"),
    ],
)
def test_bad_options_are_refused_with_one_line(kwargs, words):
    with pytest.raises(SpineSegError) as info:
        SlurmOptions(**kwargs)
    assert words in str(info.value)
    assert "\n" not in str(info.value)


def test_setup_lines_are_kept_as_written():
    opts = SlurmOptions(setup=("module load cuda/12", 'source "/opt/my env/bin/activate"'))
    assert opts.setup == ("module load cuda/12", 'source "/opt/my env/bin/activate"')


def test_options_round_trip_through_json():
    opts = SlurmOptions(partition="p", setup=("module load x",), extra_sbatch=("--exclusive",))
    again = SlurmOptions.from_dict(json.loads(json.dumps(opts.to_dict())))
    assert again == opts
    with pytest.raises(SpineSegError, match="unknown slurm option"):
        SlurmOptions.from_dict({"partitions": "p"})


def test_line_checks():
    assert (
        parse_sbatch_line("  #SBATCH --mail-user=me@example.org ") == "--mail-user=me@example.org"
    )
    assert check_line("module load x", "setup line") == "module load x"
    with pytest.raises(SpineSegError, match="holds a control character"):
        check_line("a\rb", "setup line")


# ----------------------------------------------------------------------------- states, logs


def test_slurm_states_map_to_ours():
    assert normalise_slurm_state("CANCELLED by 0") == CANCELLED
    assert normalise_slurm_state("REQUEUED") == PENDING
    assert normalise_slurm_state("OUT_OF_MEMORY") == FAILED
    assert normalise_slurm_state("TIMEOUT") == TIMEOUT
    assert combine_states([COMPLETED, COMPLETED]) == COMPLETED
    assert combine_states([COMPLETED, PENDING]) == RUNNING
    assert combine_states([COMPLETED, FAILED, CANCELLED]) == FAILED
    assert combine_states([PENDING, PENDING]) == PENDING


def test_error_line_prefers_the_cli_line(tmp_path):
    log = tmp_path / "7_0_log.err"
    log.write_text(
        "epoch 1/3: 10%\repoch 1/3: 100%\n"
        "Traceback (most recent call last):\n  ...\nRuntimeError: spine-seg failed\n"
        "spine-seg train: error: /data/x: does not exist\n"
        "srun: error: vm: task 0: Exited with exit code 1\n"
    )
    text = tail(log, 50)
    assert text.splitlines()[0] == "epoch 1/3: 100%"  # a progress bar's last state only
    assert error_line(text) == "spine-seg train: error: /data/x: does not exist"
    assert error_line("ValueError: bad\nok") == "ValueError: bad"
    assert error_line("all fine") is None
    assert tail(tmp_path / "missing.err") == ""


def test_epochs_done_reads_the_history(tmp_path):
    history = tmp_path / "m.history.csv"
    assert epochs_done(history) is None
    history.write_text("epoch,loss\n")
    assert epochs_done(history) == 0
    history.write_text("epoch,loss\n1,0.5\n2,0.4\n")
    assert epochs_done(history) == 2


# ----------------------------------------------------------------------------- scripts


ODD = "data set's $(touch pwned)"


def _train_spec(tmp_path, **kw) -> JobSpec:
    """A training job on an (empty) data set with an odd name, made in `tmp_path`."""
    (tmp_path / ODD).mkdir(exist_ok=True)
    config = TrainConfig(tmp_path / ODD, tmp_path / "models" / "m.keras", epochs=3, augment=False)
    return training_spec(config, **kw)


def test_training_spec_knows_its_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ds").mkdir()
    spec = training_spec(TrainConfig("ds", "models/m.keras", epochs=3, size="64x32"))
    assert spec.kind == "train" and spec.epochs == 3
    assert spec.out == tmp_path / "models" / "m.keras"
    assert spec.folder == tmp_path / "models" / "m.job"
    assert spec.history == tmp_path / "models" / "m.history.csv"
    assert spec.checkpoints == (tmp_path / "models" / "m.last.keras", spec.out)
    # the job's config: the same settings, every path absolute
    config = TrainConfig.from_dict(spec.config)
    assert config.dataset == tmp_path / "ds" and config.out == spec.out
    assert config.size == (64, 32) and config.epochs == 3
    assert json.loads(json.dumps(spec.to_dict())) == spec.to_dict()
    assert JobSpec.from_dict(spec.to_dict()) == spec


def test_spec_refuses_control_characters_in_its_folder(tmp_path):
    (tmp_path / "ds").mkdir()
    config = TrainConfig(tmp_path / "ds", tmp_path / "m.keras")
    with pytest.raises(SpineSegError, match="control character"):
        training_spec(config, folder=tmp_path / "job\nrm -rf ~")


def test_job_script_runs_the_entry_point_on_the_spec(tmp_path):
    """Run the plain script with bash: the odd data set name reaches the job intact."""
    spec = _train_spec(tmp_path)
    opts = SlurmOptions(
        time_min=5, setup=("export SPINE_SEG_SETUP_RAN=yes",), extra_sbatch=("--exclusive",)
    )
    script = render_script(spec, opts)
    assert "#SBATCH --time=5" in script and "#SBATCH --exclusive" in script
    assert f"#SBATCH --chdir={spec.cwd}" in script
    assert "#SBATCH --signal" not in script  # nothing in the plain script would catch it
    assert f"-m napari_spine_seg.jobs.run {spec.spec_file}" in script
    assert ODD not in script  # the settings are in spec.json, not on the command line
    spec.folder.mkdir(parents=True)
    spec.write()
    path = tmp_path / "job.sbatch"
    path.write_text(script)
    done = subprocess.run(["bash", str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"spine-seg train: error: {tmp_path / ODD}: is empty"
    )
    assert not (tmp_path / "pwned").exists()


def _checkpoint(path, epoch):
    """A model file holding only our metadata: what choosing a checkpoint reads."""
    import zipfile

    from napari_spine_seg.model.files import METADATA_MEMBER, ModelInfo

    path.parent.mkdir(parents=True, exist_ok=True)
    info = ModelInfo(preset="unet", training={"epoch": epoch})
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(METADATA_MEMBER, json.dumps(info.to_json()))
    return path


def test_a_run_again_continues_from_its_own_most_trained_checkpoint(tmp_path, capsys):
    spec = _train_spec(tmp_path)
    config = TrainConfig.from_dict(spec.config)
    last, best = spec.checkpoints
    _checkpoint(best, 2)  # an older model at the same path: not this job's
    spec.folder.mkdir(parents=True)
    assert continued(spec, config) == config  # the first run starts as configured
    marker = spec.folder / STARTED_NAME
    assert marker.is_file()
    os.utime(best, (marker.stat().st_mtime - 60,) * 2)
    assert continued(spec, config) == config  # the old model is still not ours
    _checkpoint(last, 1)
    _checkpoint(best, 2)  # written by this job since it started
    (tmp_path / "models" / "m.broken.keras").write_bytes(b"not a zip")
    assert pick_checkpoint([tmp_path / "models" / "m.broken.keras", last, best]) == (best, 2)
    again = continued(spec, config)
    assert again.resume == best and again.epochs == 3
    assert f"continuing from {best} (2 epochs done)" in capsys.readouterr().err
    _checkpoint(last, 3)
    assert continued(spec, config) is None  # every epoch asked for has run
    spec.write()
    assert run_main([str(spec.folder)]) == 0
    assert "has trained all 3 epochs; nothing left to do" in capsys.readouterr().err


def _images(tmp_path, n=5):
    from _files import write_folder_layout

    write_folder_layout(tmp_path / "ds", n=n, size=(40, 20))
    return tmp_path / "ds"


def test_array_script_runs_one_part_per_task(tmp_path):
    config = PredictConfig(tmp_path / "m.keras", [_images(tmp_path)], tmp_path / "out", tta=True)
    spec = prediction_spec(config, array=2)
    assert spec.n_tasks == 2 and spec.out == tmp_path / "out"
    script = render_script(spec, SlurmOptions())
    assert "#SBATCH --array=0-1" in script
    assert "%A_%a_0_log.err" in script
    assert script.rstrip().endswith(
        f'-m napari_spine_seg.jobs.run {spec.spec_file} "$SLURM_ARRAY_TASK_ID"'
    )
    check = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    tasks = [PredictConfig.from_dict(spec.task_config(t)) for t in range(2)]
    images = [p for t in tasks for p in t.inputs]
    assert len(images) == 5 and len(set(images)) == 5 and all(p.is_file() for p in images)
    for task, part in enumerate(tasks):
        assert part.tta and part.model == config.model and part.out == spec.part(task)


# ----------------------------------------------------------------------------- --slurm arguments


def _parser() -> argparse.ArgumentParser:
    """``spine-seg`` with train and predict offering --slurm, as the command line does."""
    parser = argparse.ArgumentParser(prog="spine-seg")
    parser.add_argument("--debug", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in (train_cli, predict_cli):
        module.add_parser(sub)
    return parser


def test_train_arguments_reach_the_job_as_its_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "-odd").mkdir()
    _checkpoint(tmp_path / "m.last.keras", 2)
    args = _parser().parse_args(
        ["--debug", "train", "--out", "m.keras", "--epochs", "7", "--size", "64x32"]
        + ["--no-augment", "--learning-rate", "0.01", "--resume", "m.last.keras"]
        + ["--slurm", "--partition", "gpu", "--time", "30", "--gpus", "2"]
        + ["--setup", "module load x", "--extra-sbatch", "constraint=a100"]
        + ["--extra-sbatch=--exclusive"]
        + ["--", "-odd"]
    )
    config = train_cli.config_from_args(args)
    spec = training_spec(config, debug=args.debug)
    assert spec.debug and spec.epochs == 7 and spec.kind == "train"
    sent = TrainConfig.from_dict(spec.config)
    assert sent.size == (64, 32) and not sent.augment and sent.learning_rate == 0.01
    assert sent.resume == tmp_path / "m.last.keras" and sent.dataset == tmp_path / "-odd"
    assert "slurm" not in json.dumps(spec.config) and "gpu" not in json.dumps(spec.config)
    opts = _slurm_args.slurm_options(args)
    assert opts.partition == "gpu" and opts.time_min == 30 and opts.gpus == 2
    assert opts.setup == ("module load x",)
    assert opts.extra_sbatch == ("--constraint=a100", "--exclusive")


def test_predict_arguments_reach_the_job_as_its_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _images(tmp_path)
    args = _parser().parse_args(
        ["predict", "m.keras", "ds", "--out", "preds", "--tta", "--batch-size", "3"]
        + ["--probability", "--slurm", "--array", "1"]
    )
    spec = prediction_spec(predict_cli.config_from_args(args), array=args.slurm_array)
    assert spec.tasks == () and spec.kind == "predict"
    assert PredictConfig.from_dict(spec.config) == PredictConfig(
        tmp_path / "m.keras", [tmp_path / "ds"], tmp_path / "preds", 3, True, True
    )


def test_bad_slurm_arguments_are_one_line_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ds").mkdir()
    args = _parser().parse_args(
        ["train", "ds", "--out", "m.keras", "--slurm", "--extra-sbatch", "--wrap=rm -rf ~"]
    )
    spec = training_spec(train_cli.config_from_args(args))
    with pytest.raises(SpineSegError, match="--key=value"):
        _slurm_args.run_on_slurm(args, spec)
    config = PredictConfig("m.keras", ["ds"], "preds")
    with pytest.raises(SpineSegError, match="--array must be at least 1, got 0"):
        prediction_spec(config, array=0)


# ----------------------------------------------------------------------------- registry


def test_registry_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv("SPINE_SEG_JOBS_DIR", str(tmp_path / "index"))
    spec = _train_spec(tmp_path)
    record = registry.JobRecord("42", "slurm", spec, SlurmOptions(partition="p"), typed=("x",))
    registry.save(record)
    assert registry.load("42") == record
    assert registry.load(spec.folder) == record  # from the job folder's job.json
    assert read_spec(spec.folder / "job.json") == spec  # what the entry point reads, too
    assert [r.job_id for r in registry.all_records()] == ["42"]
    assert registry.remember_state(record, "COMPLETED").last_state == "COMPLETED"
    assert registry.load("42").last_state == "COMPLETED"
    with pytest.raises(SpineSegError, match="no job 43"):
        registry.load("43")
    with pytest.raises(SpineSegError, match="not a job id"):
        registry.load("../../etc/passwd")


def test_the_entry_point_runs_with_this_python(tmp_path):
    spec = _train_spec(tmp_path)
    command = spec.run_command()
    assert command[:3] == [sys.executable, "-m", "napari_spine_seg.jobs.run"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"spine-seg job: error: {spec.spec_file}: does not exist (a job folder or its spec.json)"
    )
