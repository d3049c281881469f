"""Our default training pipeline against the seed's, in one process, on the same phantoms.

The seed's pipeline is the keras-io "oxford pets" example as the seed paper used it:
the ``pets`` U-Net at 160 × 160 × 3, a ``keras.utils.Sequence`` that opens and resizes
every JPEG and trimap PNG again for every batch (``load_img``, nearest neighbour, no
normalisation, no augmentation), RMSprop, sparse categorical cross-entropy, batch 32,
and the best checkpoint by validation loss. Its trimap PNGs are written beforehand (the
seed's were hand-painted), which is not timed. Ours is :func:`napari_spine_seg.model.train.train`
with its defaults, from a cold cache (decoding is timed).

Both train on the same training phantoms, validate on the same held-out ones, and are
given the same wall-clock budget. Measured, for each:

* training images per second (median epoch, after the first);
* wall time until the validation spine Dice, scored at full size as ``spine-seg
  evaluate`` scores (border band ignored), first reaches 0.90 (scoring time excluded);
* test spine Dice and pixel accuracy of the model each pipeline keeps at the budget;
* prediction milliseconds per full-size test image and per 2,800 × 1,100 X-ray (decode,
  predict, back to full size);
* peak resident memory during training.

Run ``python benchmarks/bench_training.py [--json FILE] [--budget S] [--train N] [--test N]``;
about 20 minutes on 2 CPU cores with the defaults.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

SEED_SIZE = (160, 160)
SEED_BATCH = 32
TARGET_DICE = 0.90
#: rows x cols of a typical X-ray of the real set, to time prediction at its size
BIG_SHAPE = (2800, 1100)
BIG_NAME = "big-xray.jpg"


class PeakRSS:
    """Sample this process's resident memory in a thread; ``peak`` in MiB."""

    def __init__(self, interval: float = 0.2):
        self.interval = interval
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def rss_mib() -> float:
        try:
            with open("/proc/self/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            pass
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss_mib())
            time.sleep(self.interval)

    def __enter__(self):
        self.peak = self.rss_mib()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss_mib())


class Clock:
    """Training wall time with scoring pauses taken out; doubles as a cancel event."""

    def __init__(self, budget: float):
        self.budget = budget
        self.start = time.perf_counter()
        self.paused = 0.0

    def elapsed(self) -> float:
        return time.perf_counter() - self.start - self.paused

    def is_set(self) -> bool:  # threading.Event-like: train() checks it after each batch
        return self.elapsed() >= self.budget


def score(gts, preds) -> dict:
    from napari_spine_seg.spine.metrics import pixel_accuracy, spine_dice

    return {
        "spine_dice": float(np.mean([spine_dice(g, p) for g, p in zip(gts, preds, strict=True)])),
        "pixel_accuracy": float(
            np.mean([pixel_accuracy(g, p) for g, p in zip(gts, preds, strict=True)])
        ),
    }


# ----------------------------------------------------------------------------- the seed


def seed_sequence_class():
    import keras
    from keras.utils import load_img

    class OxfordPets(keras.utils.PyDataset):
        """The keras-io example's Sequence: every batch re-reads and resizes its files."""

        def __init__(self, batch_size, img_size, input_img_paths, target_img_paths, **kwargs):
            super().__init__(**kwargs)
            self.batch_size = batch_size
            self.img_size = img_size
            self.input_img_paths = input_img_paths
            self.target_img_paths = target_img_paths

        def __len__(self):
            return len(self.target_img_paths) // self.batch_size

        def __getitem__(self, idx):
            i = idx * self.batch_size
            batch_input = self.input_img_paths[i : i + self.batch_size]
            batch_target = self.target_img_paths[i : i + self.batch_size]
            x = np.zeros((self.batch_size, *self.img_size, 3), dtype="float32")
            for j, path in enumerate(batch_input):
                x[j] = load_img(path, target_size=self.img_size)
            y = np.zeros((self.batch_size, *self.img_size, 1), dtype="uint8")
            for j, path in enumerate(batch_target):
                img = load_img(path, target_size=self.img_size, color_mode="grayscale")
                y[j] = np.expand_dims(img, 2)
                y[j] -= 1  # trimap 1, 2, 3 -> classes 0, 1, 2
            return x, y

    return OxfordPets


def seed_predict(model, paths) -> list[np.ndarray]:
    """The seed's prediction: 160x160 RGB in, argmax, trimap resized back (nearest)."""
    from keras.utils import load_img
    from PIL import Image

    out = []
    for path in paths:
        with Image.open(path) as im:
            w, h = im.size
        x = np.asarray(load_img(path, target_size=SEED_SIZE), dtype="float32")[None]
        probs = np.asarray(model.predict_on_batch(x))[0]
        small = (np.argmax(probs, axis=-1) + 1).astype(np.uint8)
        out.append(np.asarray(Image.fromarray(small).resize((w, h), Image.NEAREST)))
    return out


def run_seed(train_s, val_s, test_s, work: Path, budget: float, log) -> dict:
    import keras

    from napari_spine_seg.data.masks import trimap_name, write_trimap_png
    from napari_spine_seg.model.builders import build_model

    masks = work / "seed-trimaps"
    for s in train_s + val_s:  # the seed's hand-painted trimaps; not timed
        write_trimap_png(masks / trimap_name(s.name), s.load_trimap())
    val_gt = [s.load_trimap() for s in val_s]
    keras.utils.set_random_seed(0)
    Seq = seed_sequence_class()
    train_batch = min(SEED_BATCH, len(train_s))  # smaller only for sets under 32 images

    def sequence(samples, batch):
        return Seq(
            batch,
            SEED_SIZE,
            [str(s.image_path) for s in samples],
            [str(masks / trimap_name(s.name)) for s in samples],
        )

    train_gen = sequence(train_s, train_batch)
    val_gen = sequence(val_s, min(SEED_BATCH, len(val_s)))
    clock = Clock(budget)
    curve, epoch_seconds = [], []
    best_path = work / "seed_best.keras"

    class Probe(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            if clock.is_set():
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            epoch_seconds.append(time.perf_counter() - self.t)
            t = time.perf_counter()
            dice = score(val_gt, seed_predict(self.model, [s.image_path for s in val_s]))[
                "spine_dice"
            ]
            clock.paused += time.perf_counter() - t
            curve.append((round(clock.elapsed(), 1), round(dice, 4)))
            log(f"seed  epoch {epoch + 1}: {clock.elapsed():6.0f} s  val Dice {dice:.4f}")

    with PeakRSS() as rss:
        model = build_model("pets", (*SEED_SIZE, 3))
        model.compile(
            optimizer="rmsprop", loss="sparse_categorical_crossentropy", metrics=["accuracy"]
        )
        clock.start = time.perf_counter()
        model.fit(
            train_gen,
            epochs=10_000,
            validation_data=val_gen,
            callbacks=[keras.callbacks.ModelCheckpoint(best_path, save_best_only=True), Probe()],
            verbose=0,
        )
        trained_for = clock.elapsed()
    best = keras.saving.load_model(best_path) if best_path.exists() else model
    test_paths = [s.image_path for s in test_s]
    seed_predict(best, test_paths[:1])  # warm up
    t = time.perf_counter()
    preds = seed_predict(best, test_paths)
    predict_ms = (time.perf_counter() - t) / len(test_paths) * 1000
    test = score([s.load_trimap() for s in test_s], preds)
    n_per_epoch = len(train_gen) * train_batch
    big_ms = time_big(lambda path: seed_predict(best, [path]), work / BIG_NAME)
    return _summary(
        "seed (keras-io pets 160x160, rmsprop, CE)",
        curve,
        epoch_seconds,
        n_per_epoch,
        trained_for,
        test,
        predict_ms,
        big_ms,
        rss.peak,
    )


# ----------------------------------------------------------------------------- ours


def run_ours(train_s, val_s, test_s, work: Path, budget: float, log) -> dict:
    import keras

    from napari_spine_seg.data.dataset import Dataset
    from napari_spine_seg.model.config import PRESET_SIZES
    from napari_spine_seg.model.files import LoadedModel, load_model, read_metadata
    from napari_spine_seg.model.predict import predict_images
    from napari_spine_seg.model.train import train

    val_gt = [s.load_trimap() for s in val_s]
    curve, epoch_seconds = [], []
    clock = Clock(budget)
    info_holder = {}

    class Probe(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            epoch_seconds.append(time.perf_counter() - self.t)
            if not (work / "ours.keras").exists():  # cancelled within the first epoch
                return
            t = time.perf_counter()
            if "info" not in info_holder:  # preprocessing settings, from the first checkpoint
                info_holder["info"] = read_metadata(work / "ours.keras")
            info = info_holder["info"]
            loaded = LoadedModel(self.model, info)
            preds = [
                p.trimap
                for p in predict_images(loaded, [s.image_path for s in val_s], batch_size=8)
            ]
            dice = score(val_gt, preds)["spine_dice"]
            clock.paused += time.perf_counter() - t
            curve.append((round(clock.elapsed(), 1), round(dice, 4)))
            log(f"ours  epoch {epoch + 1}: {clock.elapsed():6.0f} s  val Dice {dice:.4f}")

    # train() splits off validation itself; hand it train + val as splits it recognises
    samples = tuple(_with_split(s, "training") for s in train_s) + tuple(
        _with_split(s, "validation") for s in val_s
    )
    dataset = Dataset(work, "aasce", samples, ("training", "validation"))
    with PeakRSS() as rss:
        clock.start = time.perf_counter()
        result = train(
            dataset,
            work / "ours.keras",
            epochs=10_000,
            cancel=clock,
            callbacks=[Probe()],
            cache=work / "cache",
        )
        trained_for = clock.elapsed()
    model = load_model(result.model_path)
    test_paths = [s.image_path for s in test_s]
    predict_images(model, test_paths[:1])  # warm up
    t = time.perf_counter()
    preds = [p.trimap for p in predict_images(model, test_paths, batch_size=1)]
    predict_ms = (time.perf_counter() - t) / len(test_paths) * 1000
    test = score([s.load_trimap() for s in test_s], preds)
    big_ms = time_big(lambda path: predict_images(model, [path]), work / BIG_NAME)
    out = _summary(
        "ours (unet {}x{}, Adam, CE+Dice, augmented, cached)".format(*PRESET_SIZES["unet"]),
        curve,
        epoch_seconds,
        len(train_s),
        trained_for,
        test,
        predict_ms,
        big_ms,
        rss.peak,
    )
    out["stopped"] = result.stopped
    return out


def _with_split(sample, split):
    from dataclasses import replace

    return replace(sample, split=split)


def time_big(predict, path: Path) -> float:
    """Median milliseconds of three predictions of one real-size image (after a warm-up)."""
    predict(path)
    times = []
    for _ in range(3):
        t = time.perf_counter()
        predict(path)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def write_big_image(sample, path: Path) -> Path:
    """A test phantom upscaled to the real set's size (BIG_SHAPE), as an 8-bit JPEG."""
    from PIL import Image

    pixels = sample.load_image().pixels
    big = Image.fromarray(pixels).resize((BIG_SHAPE[1], BIG_SHAPE[0]), Image.BILINEAR)
    big.save(path, quality=92)
    return path


def _summary(
    name, curve, epoch_seconds, n_per_epoch, trained_for, test, predict_ms, big_ms, peak
) -> dict:
    reached = next((t for t, d in curve if d >= TARGET_DICE), None)
    steady = epoch_seconds[1:] or epoch_seconds
    return {
        "pipeline": name,
        "train_images_per_s": round(n_per_epoch / statistics.median(steady), 2) if steady else None,
        "seconds_to_val_dice_0.90": reached,
        "epochs": len(curve),
        "trained_seconds": round(trained_for, 1),
        "test_spine_dice": round(test["spine_dice"], 4),
        "test_pixel_accuracy": round(test["pixel_accuracy"], 4),
        "predict_ms_per_full_size_image": round(predict_ms, 1),
        f"predict_ms_{BIG_SHAPE[0]}x{BIG_SHAPE[1]}_image": round(big_ms, 1),
        "peak_rss_mib": round(peak, 0),
        "val_dice_curve": curve,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON")
    parser.add_argument(
        "--budget", type=float, default=420.0, help="training seconds per pipeline (default 420)"
    )
    parser.add_argument("--train", type=int, default=120, help="training phantoms (default 120)")
    parser.add_argument("--test", type=int, default=24, help="test phantoms (default 24)")
    parser.add_argument("--val-fraction", type=float, default=0.15)
    parser.add_argument("--data", metavar="DIR", help="an existing phantom set to use instead")
    args = parser.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from napari_spine_seg.data.dataset import open_dataset
    from napari_spine_seg.data.phantom import write_phantom_set
    from napari_spine_seg.model.train import split_samples

    def log(line):
        print(line, file=sys.stderr, flush=True)

    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-training-") as tmp:
        work = Path(tmp)
        root = (
            Path(args.data)
            if args.data
            else write_phantom_set(work / "phantoms", n_train=args.train, n_test=args.test, seed=0)
        )
        dataset = open_dataset(root)
        train_s, val_s = split_samples(dataset.split("training"), args.val_fraction, seed=0)
        test_s = list(dataset.split("test").samples)
        write_big_image(test_s[0], work / BIG_NAME)
        log(
            f"{len(train_s)} training, {len(val_s)} validation, {len(test_s)} test phantoms; budget {args.budget:.0f} s each"
        )
        results = {
            "seed": run_seed(train_s, val_s, test_s, work, args.budget, log),
            "ours": run_ours(train_s, val_s, test_s, work, args.budget, log),
        }
    s, o = results["seed"]["seconds_to_val_dice_0.90"], results["ours"]["seconds_to_val_dice_0.90"]
    results["speedup_to_val_dice_0.90"] = (
        round(s / o, 2)
        if s and o
        else (f"> {args.budget / o:.1f} (seed never reached it)" if o else None)
    )
    results["settings"] = {
        "budget_s": args.budget,
        "n_train": len(train_s),
        "n_val": len(val_s),
        "n_test": len(test_s),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "total_s": round(time.perf_counter() - t_all, 1),
    }
    keys = [k for k in results["ours"] if k not in ("pipeline", "val_dice_curve", "stopped")]
    print(f"{'':34} {'seed':>12} {'ours':>12}")
    for k in keys:
        print(f"{k:34} {results['seed'][k]!s:>12} {results['ours'][k]!s:>12}")
    print(f"speed-up to val Dice 0.90: {results['speedup_to_val_dice_0.90']}")
    if args.json:
        from napari_spine_seg.atomic import write_text_atomic

        write_text_atomic(args.json, json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
