"""Memory of the training input pipeline as the set grows (it must stay flat).

Writes N phantoms (or uses ``--data``), then, in one process: decodes and caches every
sample once (as :func:`~napari_spine_seg.model.train.train` does before its first
epoch) and iterates one epoch of augmented training batches, sampling the resident
memory after every tenth of the set. Flat means the RSS after 5,000 samples is the RSS
after 500, give or take the allocator.

Run ``python benchmarks/bench_pipeline_memory.py [--n 5000] [--data DIR] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path


def rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000, help="phantoms (default 5000)")
    parser.add_argument("--data", metavar="DIR", help="an existing AASCE-layout set to use instead")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args(argv)

    from napari_spine_seg.data.dataset import open_dataset
    from napari_spine_seg.data.phantom import write_phantom_set
    from napari_spine_seg.model.config import PRESET_SIZES
    from napari_spine_seg.model.pipeline import ArrayCache, Augmentation, BatchSource, InputSpec

    def log(line):
        print(line, file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        work = Path(tmp)
        t = time.perf_counter()
        if args.data:
            root = Path(args.data)
        else:
            root = write_phantom_set(work / "phantoms", n_train=args.n, n_test=0, seed=1)
        synth_s = time.perf_counter() - t
        dataset = open_dataset(root)
        samples = list(dataset.samples)
        n = len(samples)
        log(f"{n} samples ({synth_s:.0f} s to write); RSS {rss_mib():.0f} MiB")
        source = BatchSource(
            samples,
            InputSpec(PRESET_SIZES["unet"]),
            batch_size=8,
            cache=ArrayCache(work / "cache"),
            augmentation=Augmentation(),
            shuffle=True,
        )
        marks = {max(1, round(n * k / 10)) for k in range(1, 11)}
        decode = []
        t = time.perf_counter()

        def progress(done, total):
            if done in marks:
                decode.append((done, round(rss_mib(), 1)))
                log(f"decoded {done}/{total}: RSS {decode[-1][1]:.0f} MiB")

        source.prepare(progress)
        decode_s = time.perf_counter() - t
        batches = []
        t = time.perf_counter()
        steps = len(source)
        step_marks = {max(0, round(steps * k / 10) - 1) for k in range(1, 11)}
        for i in range(steps):
            source.batch(i)
            if i in step_marks:
                batches.append(((i + 1) * source.batch_size, round(rss_mib(), 1)))
        epoch_s = time.perf_counter() - t
        log(f"one augmented epoch: {epoch_s:.0f} s; RSS {rss_mib():.0f} MiB")
    result = {
        "n_samples": n,
        "decode_ms_per_sample": round(decode_s / n * 1000, 1),
        "batch_ms_per_sample": round(epoch_s / n * 1000, 2),
        "rss_mib_while_decoding": decode,
        "rss_mib_while_batching": batches,
        "rss_growth_mib_decoding": round(decode[-1][1] - decode[0][1], 1),
        "rss_growth_mib_batching": round(batches[-1][1] - batches[0][1], 1),
    }
    print(json.dumps(result, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
