"""A catalogue of awkward inputs, each through the real ``spine-seg`` command line.

Every case writes real files in real formats (damaged on purpose) into ``in/``, runs
``spine-seg`` in-process, and checks the promise of the command line: exit status 2,
exactly one line on stderr that names the offending file (and says what is wrong), no
traceback, and not one byte of the inputs changed (every file is checksummed before and
after). Models are real ``.keras`` archives; the unsafe ones are real archives whose
``config.json`` was rewritten.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import struct
import subprocess
import sys
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _files import (
    aasce_name,
    synthetic_landmarks,
    synthetic_xray,
    truncate_file,
    write_aasce_layout,
    write_dicom,
    write_folder_layout,
    write_jpeg,
    write_mat,
    write_mat_v73,
    write_png,
    write_tiff,
    write_trimap,
)
from napari_spine_seg.cli import main
from napari_spine_seg.trimap import trimap_from_landmarks

SIZE = (120, 48)
TRAIN = "training"
BIG = 60000  # what a decompression bomb's header claims, per side


# --------------------------------------------------------------------------- damaged files


def png_claiming(path: Path, rows: int, cols: int) -> Path:
    """A real 8 x 8 PNG whose IHDR (with a valid CRC) claims `rows` x `cols` pixels."""
    write_png(path, np.zeros((8, 8), np.uint8))
    data = bytearray(path.read_bytes())
    data[16:24] = struct.pack(">II", cols, rows)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))
    return path


def jpeg_claiming(path: Path, rows: int, cols: int) -> Path:
    """A real JPEG whose start-of-frame header claims `rows` x `cols` pixels."""
    write_jpeg(path, np.zeros((8, 8), np.uint8))
    data = bytearray(path.read_bytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", rows, cols)
    path.write_bytes(bytes(data))
    return path


def tiff_claiming(path: Path, rows: int, cols: int) -> Path:
    """A real TIFF whose ImageWidth and ImageLength tags claim `rows` x `cols` pixels."""
    write_tiff(path, np.zeros((8, 8), np.uint8))
    data = bytearray(path.read_bytes())
    assert data[:2] == b"II"
    ifd = struct.unpack_from("<I", data, 4)[0]
    for i in range(struct.unpack_from("<H", data, ifd)[0]):
        entry = ifd + 2 + 12 * i
        tag = struct.unpack_from("<H", data, entry)[0]
        if tag in (256, 257):  # ImageWidth, ImageLength: rewritten as LONG
            struct.pack_into("<HHII", data, entry, tag, 4, 1, cols if tag == 256 else rows)
    path.write_bytes(bytes(data))
    return path


def dicom_with(path: Path, **tags) -> Path:
    """A real DICOM X-ray, then `tags` set on it (None deletes a tag)."""
    import pydicom

    write_dicom(path, np.arange(64, dtype=np.uint16).reshape(8, 8))
    ds = pydicom.dcmread(path)
    for name, value in tags.items():
        if value is None:
            delattr(ds, name)
        else:
            setattr(ds, name, value)
    ds.save_as(path)
    return path


def multiframe_dicom(path: Path, frames: int = 3) -> Path:
    import pydicom

    write_dicom(path, np.arange(frames * 64, dtype=np.uint16).reshape(frames * 8, 8))
    ds = pydicom.dcmread(path)
    ds.Rows, ds.NumberOfFrames = 8, frames
    ds.save_as(path)
    return path


def xray_jpeg(path: Path) -> Path:
    lm = synthetic_landmarks(*SIZE)
    return write_jpeg(path, synthetic_xray(lm, SIZE))


def good_trimap(path: Path) -> Path:
    return write_trimap(path, trimap_from_landmarks(synthetic_landmarks(*SIZE), SIZE))


def rewrite_zip(src: Path, dst: Path, member: str, change: Callable[[bytes], bytes | None]):
    """Copy a zip archive, changing (or with None, leaving out) one member."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == member:
                data = change(data)
                if data is None:
                    continue
            zout.writestr(item, data)
    return dst


def edit_config(edit: Callable[[dict], None]) -> Callable[[bytes], bytes]:
    def change(raw: bytes) -> bytes:
        config = json.loads(raw)
        edit(config)
        return json.dumps(config).encode()

    return change


def first_layer(config: dict) -> dict:
    """The first layer after the input of a saved functional model's config."""
    return config["config"]["layers"][1]


# --------------------------------------------------------------------------- the workspace


@dataclass
class Work:
    """Where a case writes its inputs (``inp``) and outputs (``out``), and a good model."""

    inp: Path
    out: Path
    model_source: Path

    def model(self, name: str = "model.keras") -> Path:
        """A copy of a real, good model file in the inputs."""
        return Path(shutil.copyfile(self.model_source, self.inp / name))

    def aasce(self, csv: bool = True) -> Path:
        """An AASCE root with 2 training and 1 test image (each with its .mat)."""
        return write_aasce_layout(self.inp / "set", n_train=2, n_test=1, size=SIZE, csv=csv)

    def csv_only(self) -> Path:
        """An AASCE root whose training landmarks come only from landmarks.csv."""
        root = self.aasce()
        for mat in (root / "labels" / TRAIN).glob("*.mat"):
            mat.unlink()
        return root

    def split_file(self, root: Path, name: str) -> Path:
        return root / "labels" / TRAIN / name

    def trimap_folder(self) -> Path:
        folder = self.inp / "trimaps"
        for i in range(2):
            good_trimap(folder / f"t{i}.png")
        return folder


@dataclass
class Case:
    """One awkward input: ``build(work)`` writes it and returns the argv and the named file."""

    name: str
    build: Callable[[Work], tuple[list[str], Path]]
    says: str  # words of the problem the line must hold

    def __repr__(self) -> str:
        return self.name


CASES: list[Case] = []


def case(name: str, says: str):
    def register(build):
        CASES.append(Case(name, build, says))
        return build

    return register


def predict(work: Work, *inputs: Path, model: Path | None = None) -> list[str]:
    model = model if model is not None else work.inp / "never-read.keras"
    return ["predict", str(model), *map(str, inputs), "--out", str(work.out / "pred")]


# --------------------------------------------------------------------------- images


@case("png-bomb-60000", "decompression bomb")
def _(w):
    return predict(w, png_claiming(w.inp / "big.png", BIG, BIG)), w.inp / "big.png"


@case("png-over-limit-warning", "decompression bomb")
def _(w):  # above Pillow's limit but below twice it: Pillow only warns
    return predict(w, png_claiming(w.inp / "big.png", 10000, 9000)), w.inp / "big.png"


@case("jpeg-bomb-60000", "decompression bomb")
def _(w):
    return predict(w, jpeg_claiming(w.inp / "big.jpg", BIG, BIG)), w.inp / "big.jpg"


@case("tiff-bomb-60000", "decompression bomb")
def _(w):
    return predict(w, tiff_claiming(w.inp / "big.tif", BIG, BIG)), w.inp / "big.tif"


@case("dicom-bomb-60000", "decompression bomb")
def _(w):
    path = dicom_with(w.inp / "big.dcm", Rows=BIG, Columns=BIG)
    return predict(w, path), path


@case("png-zero-width", "damaged PNG")
def _(w):
    return predict(w, png_claiming(w.inp / "flat.png", 8, 0)), w.inp / "flat.png"


@case("dicom-multi-frame", "multi-frame DICOM (3 frames)")
def _(w):
    return predict(w, multiframe_dicom(w.inp / "cine.dcm")), w.inp / "cine.dcm"


@case("dicom-no-pixel-data", "without pixel data")
def _(w):
    path = dicom_with(w.inp / "nopix.dcm", PixelData=None)
    return predict(w, path, model=w.model()), path


@case("dicom-no-rows", "no Rows/Columns")
def _(w):
    path = dicom_with(w.inp / "norows.dcm", Rows=None)
    return predict(w, path), path


@case("dicom-truncated", "DICOM")
def _(w):
    path = truncate_file(dicom_with(w.inp / "cut.dcm"), 0.3)
    return predict(w, path), path


@case("dicom-pixel-data-short", "pixel data")
def _(w):
    path = dicom_with(w.inp / "short.dcm", Rows=9)
    return predict(w, path, model=w.model()), path


def tiff_with_bad_tag_type(path: Path) -> Path:
    """A TIFF whose first tag has data type 0: tifffile logs an error record about it."""
    write_tiff(path, np.zeros((8, 8), np.uint8))
    data = bytearray(path.read_bytes())
    ifd = struct.unpack_from("<I", data, 4)[0]
    struct.pack_into("<H", data, ifd + 4, 0)
    path.write_bytes(bytes(data))
    return path


@case("tiff-bad-tag-type", "an empty image")
def _(w):
    return predict(w, tiff_with_bad_tag_type(w.inp / "tag.tif")), w.inp / "tag.tif"


@case("dicom-photometric-lowercase", "'monochrome2'")
def _(w):
    path = dicom_with(w.inp / "lower.dcm", PhotometricInterpretation="monochrome2")
    return predict(w, path, model=w.model()), path


@case("jpeg-empty-0-bytes", "empty (0 bytes)")
def _(w):
    path = w.inp / "empty.jpg"
    path.write_bytes(b"")
    return predict(w, path), path


@case("jpeg-truncated", "truncated")
def _(w):
    path = truncate_file(xray_jpeg(w.inp / "cut.jpg"))
    return predict(w, path, model=w.model()), path


@case("jpeg-that-is-text", "not an image file")
def _(w):
    path = w.inp / "notes.jpg"
    path.write_text("this is not an X-ray\n")
    return predict(w, path), path


@case("png-truncated", "truncated or corrupt")
def _(w):
    path = truncate_file(
        write_png(w.inp / "cut.png", synthetic_xray(synthetic_landmarks(*SIZE), SIZE)), 0.6
    )
    return predict(w, path, model=w.model()), path


@case("png-bad-crc-header", "damaged PNG")
def _(w):
    path = write_png(w.inp / "crc.png", np.zeros((8, 8), np.uint8))
    data = bytearray(path.read_bytes())
    data[20] ^= 0xFF  # width changed, CRC not
    path.write_bytes(bytes(data))
    return predict(w, path), path


@case("tiff-truncated", "unreadable image header")
def _(w):
    path = write_tiff(w.inp / "cut.tif", np.zeros((64, 64), np.uint16))
    path.write_bytes(path.read_bytes()[:20])
    return predict(w, path), path


@case("tiff-stack-of-15-pages", "multi-page TIFF (15 images)")
def _(w):
    path = write_tiff(w.inp / "stack.tif", np.zeros((3, 5, 16, 16), np.uint8))
    return predict(w, path, model=w.model()), path


@case("tiff-complex-pixels", "TIFF")
def _(w):
    path = write_tiff(w.inp / "complex.tif", np.zeros((16, 16), np.complex64))
    return predict(w, path, model=w.model()), path


@case("text-file-named-dcm", "DICOM")
def _(w):
    path = w.inp / "scan.dcm"
    path.write_text("no preamble, no DICM, no tags")
    return predict(w, path), path


@case("input-not-an-image-suffix", "not an image file")
def _(w):
    path = w.inp / "notes.txt"
    path.write_text("hello\n")
    return predict(w, path), path


@case("input-missing", "does not exist")
def _(w):
    return predict(w, w.inp / "gone.jpg"), w.inp / "gone.jpg"


@case("input-dangling-symlink", "does not exist")
def _(w):
    link = w.inp / "link.jpg"
    link.symlink_to(w.inp / "nowhere.jpg")
    return predict(w, link), link


@case("input-symlink-loop", "does not exist")
def _(w):
    link = w.inp / "loop.jpg"
    link.symlink_to(link)
    return predict(w, link), link


@case("folder-named-like-an-image", "is empty")
def _(w):
    folder = w.inp / "x.jpg"
    folder.mkdir()
    return ["cobb", str(folder)], folder


@case("dataset-missing", "does not exist")
def _(w):
    return ["cobb", str(w.inp / "no such set")], w.inp / "no such set"


@case("dataset-is-a-file", "is a file")
def _(w):
    path = xray_jpeg(w.inp / "one.jpg")
    return ["train", str(path), "--out", str(w.out / "m.keras")], path


@case("dataset-empty-folder", "is empty")
def _(w):
    folder = w.inp / "empty"
    folder.mkdir()
    return ["cobb", str(folder)], folder


@case("train-image-bomb", "decompression bomb")
def _(w):
    root = w.aasce()
    path = png_claiming(root / "data" / TRAIN / aasce_name(TRAIN, 0), BIG, BIG)
    return ["train", str(root), "--out", str(w.out / "m.keras"), "--epochs", "1"], path


@case("train-truncated-image", "truncated")
def _(w):
    root = w.aasce()
    path = root / "data" / TRAIN / aasce_name(TRAIN, 1)
    path.write_bytes(path.read_bytes()[:50])
    return ["train", str(root), "--out", str(w.out / "m.keras"), "--epochs", "1"], path


@case("evaluate-dataset-image-bomb", "decompression bomb")
def _(w):
    root = w.aasce()
    pred = w.inp / "pred"
    for split in (TRAIN, "test"):
        for i in range(2 if split == TRAIN else 1):
            good_trimap(pred / (aasce_name(split, i)[:-4] + ".png"))
    path = jpeg_claiming(root / "data" / "test" / aasce_name("test", 0), BIG, BIG)
    return ["evaluate", str(pred), str(root / "data" / "test")], path


@case("trimaps-dicom-bomb-in-split", "decompression bomb")
def _(w):
    root = w.aasce(csv=False)
    name = aasce_name("test", 0)
    (root / "data" / "test" / name).unlink()
    path = dicom_with(root / "data" / "test" / name, Rows=BIG, Columns=BIG)
    return ["trimaps", str(root), "--out", str(w.out / "t")], path


@case("cobb-folder-image-bomb", "decompression bomb")
def _(w):
    root = write_folder_layout(w.inp / "folder", n=2, size=SIZE)
    path = jpeg_claiming(root / "xray 0.jpg", BIG, BIG)
    return ["cobb", str(root)], path


@case("predict-split-folder-with-bomb", "decompression bomb")
def _(w):
    root = w.aasce()
    path = png_claiming(root / "data" / "test" / "extra.png", BIG, BIG)
    return predict(w, root / "data" / "test"), path


@case("train-bad-mat-before-tensorflow", "67 x 2")
def _(w):
    root = w.aasce(csv=False)
    path = root / "labels" / TRAIN / f"{aasce_name(TRAIN, 0)}.mat"
    write_mat(path, p2=synthetic_landmarks(*SIZE)[:67])
    return ["train", str(root), "--out", str(w.out / "m.keras"), "--epochs", "1"], path


# --------------------------------------------------------------------------- models


def predict_model(w: Work, model: Path) -> list[str]:
    return predict(w, xray_jpeg(w.inp / "ok.jpg"), model=model)


@case("model-missing", "no such model file")
def _(w):
    return predict_model(w, w.inp / "none.keras"), w.inp / "none.keras"


@case("model-is-a-folder", "is a folder")
def _(w):
    (w.inp / "dir.keras").mkdir()
    return predict_model(w, w.inp / "dir.keras"), w.inp / "dir.keras"


@case("model-is-text", "not a readable .keras model file")
def _(w):
    (w.inp / "t.keras").write_text("not a zip")
    return predict_model(w, w.inp / "t.keras"), w.inp / "t.keras"


@case("model-truncated", "model")
def _(w):
    path = truncate_file(w.model("cut.keras"), 0.5)
    return predict_model(w, path), path


@case("model-zero-bytes", "not a readable .keras model file")
def _(w):
    (w.inp / "zero.keras").write_bytes(b"")
    return predict_model(w, w.inp / "zero.keras"), w.inp / "zero.keras"


@case("model-plain-keras-no-metadata", "no napari-spine-seg metadata")
def _(w):
    path = rewrite_zip(w.model("src.keras"), w.inp / "plain.keras", "napari_spine_seg.json", _drop)
    return predict_model(w, path), path


def _drop(raw):
    return None


@case("model-metadata-not-json", "not JSON")
def _(w):
    path = rewrite_zip(
        w.model("src.keras"), w.inp / "m.keras", "napari_spine_seg.json", lambda r: b"\xff{"
    )
    return predict_model(w, path), path


@case("model-newer-format", "newer napari-spine-seg")
def _(w):
    def newer(raw):
        return json.dumps({**json.loads(raw), "format_version": 99}).encode()

    path = rewrite_zip(w.model("src.keras"), w.inp / "m.keras", "napari_spine_seg.json", newer)
    return predict_model(w, path), path


@case("model-no-config-json", "no config.json")
def _(w):
    path = rewrite_zip(w.model("src.keras"), w.inp / "m.keras", "config.json", _drop)
    return predict_model(w, path), path


@case("model-config-os-system", "'os.system'")
def _(w):
    def edit(c):
        first_layer(c).update(module="os", class_name="system", registered_name=None)

    path = rewrite_zip(w.model("src.keras"), w.inp / "m.keras", "config.json", edit_config(edit))
    return predict_model(w, path), path


@case("model-config-custom-module", "'my_lab.layers.Evil'")
def _(w):
    def edit(c):
        first_layer(c).update(module="my_lab.layers", class_name="Evil")

    path = rewrite_zip(w.model("src.keras"), w.inp / "m.keras", "config.json", edit_config(edit))
    return predict_model(w, path), path


@case("model-config-keras-utils-get-file", "'keras.utils.get_file'")
def _(w):  # CVE-2025-8747: a Keras module that downloads and writes files
    def edit(c):
        first_layer(c).update(module="keras.utils", class_name="get_file")

    path = rewrite_zip(w.model("src.keras"), w.inp / "m.keras", "config.json", edit_config(edit))
    return predict_model(w, path), path


@case("model-config-builtins-function", "'os.system'")
def _(w):
    def edit(c):
        first_layer(c)["config"]["activation"] = {
            "module": "builtins",
            "class_name": "function",
            "config": "os.system",
            "registered_name": "function",
        }

    path = rewrite_zip(w.model("src.keras"), w.inp / "m.keras", "config.json", edit_config(edit))
    return predict_model(w, path), path


@case("model-config-foreign-registered-name", "'evil>Payload'")
def _(w):
    def edit(c):
        first_layer(c)["registered_name"] = "evil>Payload"

    path = rewrite_zip(w.model("src.keras"), w.inp / "m.keras", "config.json", edit_config(edit))
    return predict_model(w, path), path


@case("model-config-dotted-class-name", "not a plain class name")
def _(w):
    def edit(c):
        first_layer(c)["class_name"] = "subprocess.Popen"

    path = rewrite_zip(w.model("src.keras"), w.inp / "m.keras", "config.json", edit_config(edit))
    return predict_model(w, path), path


@case("model-lambda-layer", "Lambda layer")
def _(w):
    def edit(c):
        first_layer(c).update(class_name="Lambda", module="keras.layers")

    path = rewrite_zip(w.model("src.keras"), w.inp / "m.keras", "config.json", edit_config(edit))
    return predict_model(w, path), path


@case("model-unknown-keras-layer", "cannot be loaded as a Keras model")
def _(w):
    def edit(c):
        first_layer(c)["class_name"] = "NoSuchLayer"

    path = rewrite_zip(w.model("src.keras"), w.inp / "m.keras", "config.json", edit_config(edit))
    return predict_model(w, path), path


@case("model-weights-cut", "cannot be loaded")
def _(w):
    path = rewrite_zip(
        w.model("src.keras"), w.inp / "m.keras", "model.weights.h5", lambda raw: raw[:100]
    )
    return predict_model(w, path), path


# --------------------------------------------------------------------------- .mat landmarks


def mat_case(w: Work, write: Callable[[Path], object]) -> tuple[list[str], Path]:
    root = w.aasce(csv=False)
    path = root / "labels" / TRAIN / f"{aasce_name(TRAIN, 1)}.mat"
    path.unlink()
    write(path)
    return ["cobb", str(root)], path


@case("mat-zero-bytes", "truncated or empty (0 bytes)")
def _(w):
    return mat_case(w, lambda p: p.write_bytes(b""))


@case("mat-random-bytes", "not a MATLAB .mat file")
def _(w):
    return mat_case(w, lambda p: p.write_bytes(np.random.default_rng(1).bytes(400)))


@case("mat-truncated", "truncated or corrupt")
def _(w):
    return mat_case(w, lambda p: p.write_bytes(_mat_bytes(w, p2=synthetic_landmarks(*SIZE))[:200]))


def _mat_bytes(w: Work, **variables) -> bytes:
    scratch = write_mat(w.out / "scratch.mat", **variables)
    data = scratch.read_bytes()
    scratch.unlink()
    return data


@case("mat-without-p2", "has no variable 'p2'")
def _(w):
    return mat_case(w, lambda p: write_mat(p, pts=synthetic_landmarks(*SIZE)))


@case("mat-p2-67x2", "67 x 2")
def _(w):
    return mat_case(w, lambda p: write_mat(p, p2=synthetic_landmarks(*SIZE)[:67]))


@case("mat-p2-transposed-2x68", "2 x 68")
def _(w):
    return mat_case(w, lambda p: write_mat(p, p2=synthetic_landmarks(*SIZE).T))


@case("mat-p2-nan", "NaN")
def _(w):
    lm = synthetic_landmarks(*SIZE)
    lm[5, 1] = np.nan
    return mat_case(w, lambda p: write_mat(p, p2=lm))


@case("mat-p2-text", "not a numeric array")
def _(w):
    return mat_case(w, lambda p: write_mat(p, p2="sixty-eight points"))


@case("mat-v73-without-p2", "has no variable 'p2'")
def _(w):
    return mat_case(w, lambda p: write_mat_v73(p, q=synthetic_landmarks(*SIZE)))


@case("mat-landmarks-all-outside-image", "all 68 landmarks lie outside")
def _(w):
    return mat_case(w, lambda p: write_mat(p, p2=synthetic_landmarks(*SIZE) + [500.0, 900.0]))


@case("mat-landmarks-partly-outside", "of 68 landmarks lie outside")
def _(w):
    lm = synthetic_landmarks(*SIZE)
    lm[60:] += [0.0, 80.0]  # the last vertebrae below the image
    return mat_case(w, lambda p: write_mat(p, p2=lm))


@case("mat-negative-coordinates", "lie outside")
def _(w):
    return mat_case(w, lambda p: write_mat(p, p2=synthetic_landmarks(*SIZE) - [60.0, 0.0]))


@case("trimaps-landmarks-outside", "lie outside")
def _(w):
    argv, path = mat_case(w, lambda p: write_mat(p, p2=synthetic_landmarks(*SIZE) * 10))
    return ["trimaps", argv[1], "--out", str(w.out / "t")], path


@case("mat-without-image", "has no image")
def _(w):
    root = w.aasce(csv=False)
    path = write_mat(root / "labels" / TRAIN / "ghost.jpg.mat", p2=synthetic_landmarks(*SIZE))
    return ["cobb", str(root)], path


@case("image-without-landmarks", "has no landmarks")
def _(w):
    root = w.aasce(csv=False)
    path = xray_jpeg(root / "data" / TRAIN / "new one.jpg")
    return ["cobb", str(root)], path


@case("mat-resource-fork", "not a MATLAB .mat file")
def _(w):  # a macOS "._" file named like a label: hidden, so the real one is missing
    root = w.aasce(csv=False)
    name = aasce_name(TRAIN, 0)
    path = root / "labels" / TRAIN / f"{name}.mat"
    path.write_bytes(b"\x00\x05\x16\x07" + bytes(200))
    return ["cobb", str(root)], path


# --------------------------------------------------------------------------- CSV files


def landmarks_csv(w: Work, text: bytes | str) -> tuple[list[str], Path]:
    root = w.csv_only()
    path = w.split_file(root, "landmarks.csv")
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return ["cobb", str(root / "data" / TRAIN)], path


def _landmark_rows(n_columns: int = 136, rows: int = 2, value: str = "0.5") -> str:
    return "".join(",".join([value] * n_columns) + "\n" for _ in range(rows))


@case("landmarks-csv-135-columns", "has 135 columns, expected 136")
def _(w):
    return landmarks_csv(w, _landmark_rows(135))


@case("landmarks-csv-137-columns", "has 137 columns, expected 136")
def _(w):
    return landmarks_csv(w, _landmark_rows(137))


@case("landmarks-csv-nan", "NaN")
def _(w):
    text = _landmark_rows().replace("0.5", "nan", 1)
    return landmarks_csv(w, text)


@case("landmarks-csv-word", "not a number: 'left'")
def _(w):
    return landmarks_csv(w, _landmark_rows().replace(",0.5,", ",left,", 1))


@case("landmarks-csv-too-few-rows", "has 1 rows but filenames.csv names 2")
def _(w):
    return landmarks_csv(w, _landmark_rows(rows=1))


@case("landmarks-csv-empty", "has 0 rows")
def _(w):
    return landmarks_csv(w, b"")


@case("landmarks-csv-not-utf8", "cannot be read as CSV")
def _(w):
    return landmarks_csv(w, _landmark_rows().encode().replace(b"0.5", b"0\xe9\xff5", 1))


@case("landmarks-csv-negative", "lie outside")
def _(w):
    return landmarks_csv(w, _landmark_rows(value="-0.5"))


@case("landmarks-csv-nul-bytes", "landmarks.csv")
def _(w):
    return landmarks_csv(w, b"\x00" * 64 + b"\n")


def filenames_csv(w: Work, text: str) -> tuple[list[str], Path]:
    root = w.aasce()
    path = w.split_file(root, "filenames.csv")
    path.write_text(text)
    return ["cobb", str(root)], path


@case("filenames-csv-names-missing-image", "names ghost.jpg, which is not an image")
def _(w):
    root = w.aasce()
    path = w.split_file(root, "filenames.csv")
    path.write_text(path.read_text() + "ghost.jpg\n")
    lm = w.split_file(root, "landmarks.csv")
    lm.write_text(lm.read_text() + lm.read_text().splitlines()[0] + "\n")
    angles = w.split_file(root, "angles.csv")
    angles.write_text(angles.read_text() + "1,2,3\n")
    return ["cobb", str(root)], path


@case("filenames-csv-duplicate", "twice")
def _(w):
    name = aasce_name(TRAIN, 0)
    return filenames_csv(w, f"{name}\n{name}\n")


@case("filenames-csv-path-escape", "not an image file name")
def _(w):
    return filenames_csv(w, f"../../{aasce_name(TRAIN, 0)}\n{aasce_name(TRAIN, 1)}\n")


@case("filenames-csv-not-utf8", "cannot be read as CSV")
def _(w):
    root = w.aasce()
    path = w.split_file(root, "filenames.csv")
    path.write_bytes(b"\xff\xfe\xfa broken\n")
    return ["cobb", str(root)], path


def angles_csv(w: Work, text: str) -> tuple[list[str], Path]:
    root = w.aasce()
    path = w.split_file(root, "angles.csv")
    path.write_text(text)
    return ["cobb", str(root)], path


@case("angles-csv-two-columns", "has 2 columns, expected 3")
def _(w):
    return angles_csv(w, "1,2\n3,4\n")


@case("angles-csv-inf", "NaN or infinite")
def _(w):
    return angles_csv(w, "1,2,inf\n3,4,5\n")


@case("angles-csv-extra-row", "has 3 rows but filenames.csv names 2")
def _(w):
    return angles_csv(w, "1,2,3\n3,4,5\n6,7,8\n")


@case("angles-csv-word", "not a number")
def _(w):
    return angles_csv(w, "1,2,3\n3,four,5\n")


# --------------------------------------------------------------------------- trimaps


def trimap_with(path: Path, value: int, dtype=np.uint8) -> Path:
    trimap = trimap_from_landmarks(synthetic_landmarks(*SIZE), SIZE).astype(dtype)
    trimap[10:14, 10:14] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(trimap).save(path, format="PNG")
    return path


@case("cobb-trimap-holds-7", "found 7")
def _(w):
    folder = w.trimap_folder()
    return ["cobb", str(folder)], trimap_with(folder / "stray.png", 7)


@case("gaps-trimap-holds-7-only", "found 7")
def _(w):
    folder = w.inp / "only"
    path = trimap_with(folder / "stray.png", 7)
    trimap_with(folder / "stray2.png", 9)
    return ["gaps", str(folder)], path


@case("gaps-trimap-holds-7-among-good", "found 7")
def _(w):
    folder = w.trimap_folder()
    return ["gaps", str(folder)], trimap_with(folder / "t1 stray.png", 7)


@case("gaps-png-bomb-among-trimaps", "decompression bomb")
def _(w):
    folder = w.trimap_folder()
    return ["gaps", str(folder)], png_claiming(folder / "big.png", BIG, BIG)


@case("gaps-truncated-trimap-among-trimaps", "cannot be read")
def _(w):
    folder = w.trimap_folder()
    return ["gaps", str(folder)], truncate_file(good_trimap(folder / "t2.png"), 0.5)


@case("evaluate-prediction-holds-7", "found 7")
def _(w):
    root = w.aasce()
    pred = w.inp / "pred"
    path = trimap_with(pred / (aasce_name("test", 0)[:-4] + ".png"), 7)
    return ["evaluate", str(pred), str(root / "data" / "test")], path


@case("evaluate-prediction-missing", "test")
def _(w):
    root = w.aasce()
    pred = w.inp / "pred"
    pred.mkdir()
    return ["evaluate", str(pred), str(root / "data" / "test")], pred


@case("evaluate-prediction-rgb", "RGB colour image")
def _(w):
    root = w.aasce()
    pred = w.inp / "pred"
    path = write_png(pred / (aasce_name("test", 0)[:-4] + ".png"), np.zeros((*SIZE, 3), np.uint8))
    return ["evaluate", str(pred), str(root / "data" / "test")], path


@case("evaluate-prediction-rgba", "RGBA colour image")
def _(w):
    root = w.aasce()
    pred = w.inp / "pred"
    path = write_png(pred / (aasce_name("test", 0)[:-4] + ".png"), np.zeros((*SIZE, 4), np.uint8))
    return ["evaluate", str(pred), str(root / "data" / "test")], path


@case("trimaps-mat-67x2", "67 x 2")
def _(w):
    argv, path = mat_case(w, lambda p: write_mat(p, p2=synthetic_landmarks(*SIZE)[:67]))
    return ["trimaps", argv[1], "--out", str(w.out / "t")], path


@case("landmarks-csv-header-only", "has 0 rows")
def _(w):
    return landmarks_csv(w, ",".join(f"x{i}" for i in range(136)) + "\n")


@case("evaluate-prediction-truncated", "truncated or corrupt")
def _(w):
    root = w.aasce()
    pred = w.inp / "pred"
    path = truncate_file(good_trimap(pred / (aasce_name("test", 0)[:-4] + ".png")), 0.5)
    return ["evaluate", str(pred), str(root / "data" / "test")], path


@case("evaluate-prediction-zero-bytes", "is empty (0 bytes)")
def _(w):
    root = w.aasce()
    pred = w.inp / "pred"
    pred.mkdir()
    path = pred / (aasce_name("test", 0)[:-4] + ".png")
    path.write_bytes(b"")
    return ["evaluate", str(pred), str(root / "data" / "test")], path


@case("evaluate-prediction-bomb", "decompression bomb")
def _(w):
    root = w.aasce()
    pred = w.inp / "pred"
    path = png_claiming(pred / (aasce_name("test", 0)[:-4] + ".png"), BIG, BIG)
    return ["evaluate", str(pred), str(root / "data" / "test")], path


@case("trimap-beside-image-holds-7", "found 7")
def _(w):
    root = write_folder_layout(w.inp / "beside", n=2, size=SIZE, where="beside")
    path = trimap_with(root / "xray 1.png", 7)
    return ["cobb", str(root)], path


@case("trimap-16-bit-value-300", "found 300")
def _(w):
    root = write_folder_layout(w.inp / "sixteen", n=2, size=SIZE)
    path = trimap_with(root / "trimaps" / "xray 0.png", 300, dtype=np.uint16)
    return ["cobb", str(root)], path


@case("trimap-wrong-size", "but its image")
def _(w):
    root = write_folder_layout(w.inp / "sized", n=2, size=SIZE)
    path = write_trimap(root / "trimaps" / "xray 1.png", np.full((60, 48), 2, np.uint8))
    return ["cobb", str(root)], path


@case("trimap-without-image", "trimap without an image")
def _(w):
    root = write_folder_layout(w.inp / "orphan", n=2, size=SIZE)
    return ["cobb", str(root)], good_trimap(root / "trimaps" / "nobody.png")


@case("image-without-trimap", "has no trimap")
def _(w):
    root = write_folder_layout(w.inp / "alone", n=2, size=SIZE)
    return ["cobb", str(root)], xray_jpeg(root / "xray 9.jpg")


@case("colour-mask-grey-16-bit", "is not a trimap")
def _(w):
    root = write_folder_layout(w.inp / "grey", n=2, size=SIZE)
    path = write_png(root / "trimaps" / "xray 0.png", np.full(SIZE, 40000, np.uint16))
    return ["cobb", str(root)], path


@case("gaps-folder-is-a-file", "not a folder")
def _(w):
    return ["gaps", str(good_trimap(w.inp / "one.png"))], w.inp / "one.png"


@case("gaps-folder-of-x-rays", "none a trimap")
def _(w):
    folder = w.inp / "xrays"
    write_png(folder / "a.png", synthetic_xray(synthetic_landmarks(*SIZE), SIZE))
    return ["gaps", str(folder)], folder


# --------------------------------------------------------------------------- the test


def tree_digest(root: Path) -> dict[str, tuple]:
    """Every file, folder and link under `root`: content hash, mode, link target."""
    found = {}
    for folder, dirs, files in os.walk(root, followlinks=False):
        for name in dirs + files:
            path = Path(folder, name)
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                found[str(path)] = ("link", os.readlink(path))
            elif stat.S_ISREG(info.st_mode):
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                found[str(path)] = ("file", digest, info.st_mode, info.st_mtime_ns)
            else:
                found[str(path)] = ("dir", info.st_mode)
    return found


@pytest.fixture(scope="module")
def model_source(tmp_path_factory):
    """A real, good model file (a tiny U-Net for 64 x 32 gray images)."""
    from napari_spine_seg.model.builders import build_model
    from napari_spine_seg.model.files import ModelInfo, save_model

    path = tmp_path_factory.mktemp("model") / "good.keras"
    network = build_model("unet", (64, 32, 1), depth=2, filters=4)
    return save_model(network, path, ModelInfo(preset="unet", input_size=(64, 32)))


def test_the_catalogue_is_large_and_distinct():
    names = [c.name for c in CASES]
    assert len(names) == len(set(names))
    assert len(names) >= 80


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_input_is_one_line_naming_the_file(case, tmp_path, capsys, model_source):
    work = Work(tmp_path / "in", tmp_path / "out", model_source)
    work.inp.mkdir()
    work.out.mkdir()
    argv, named = case.build(work)
    before = tree_digest(work.inp)
    capsys.readouterr()
    status = main(argv)
    err = capsys.readouterr().err
    assert status == 2, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith(f"spine-seg {argv[0]}: error: ")
    assert str(named) in lines[0], (named, lines[0])
    assert case.says in lines[0], lines[0]
    assert tree_digest(work.inp) == before  # not one input byte, mode or time changed


# --------------------------------------------------------------------------- the real console


def _console_env() -> dict[str, str]:
    """The environment a user has: no TF_CPP_MIN_LOG_LEVEL, this checkout importable."""
    import napari_spine_seg

    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "GLOG", "PYTEST"))}
    src = str(Path(napari_spine_seg.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("KERAS_BACKEND", "tensorflow")
    return env


def _console() -> list[str]:
    script = Path(sys.executable).with_name("spine-seg")
    if not script.exists():  # the package is not installed: the same entry point
        return [
            sys.executable,
            "-c",
            "import sys; from napari_spine_seg.cli import main; sys.exit(main())",
        ]
    return [str(script)]


@pytest.mark.parametrize("damage", ["unknown-layer", "bomb", "tiff-tag"])
def test_the_console_command_prints_one_line_and_no_tensorflow_chatter(
    damage, tmp_path, model_source
):
    """Run ``spine-seg predict`` as a user would: stderr is the error line and nothing else.

    The unknown layer makes Keras (so TensorFlow) load before the error; the bomb is
    refused before TensorFlow is imported; the damaged TIFF makes tifffile log an error
    record, which the one line replaces.
    """
    work = Work(tmp_path / "in", tmp_path / "out", model_source)
    work.inp.mkdir()
    image = xray_jpeg(work.inp / "ok.jpg")
    model = work.model()
    if damage == "bomb":
        image = png_claiming(work.inp / "big.png", BIG, BIG)
    elif damage == "tiff-tag":  # tifffile logs an error record: not on the terminal
        image = tiff_with_bad_tag_type(work.inp / "tag.tif")
    else:
        model = rewrite_zip(
            model,
            work.inp / "odd.keras",
            "config.json",
            edit_config(lambda c: first_layer(c).update(class_name="NoSuchLayer")),
        )
    argv = ["predict", str(model), str(image), "--out", str(work.out)]
    done = subprocess.run(
        _console() + argv, env=_console_env(), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [done.stderr.strip()], done.stderr
    assert done.stderr.startswith("spine-seg predict: error: ")
    assert (str(model) if damage == "unknown-layer" else str(image)) in done.stderr
    assert not work.out.exists()


def test_debug_quietens_nothing_and_shows_the_traceback(tmp_path, model_source):
    """``--debug`` quietens nothing: TensorFlow's own lines and the traceback come out."""
    work = Work(tmp_path / "in", tmp_path / "out", model_source)
    work.inp.mkdir()
    model = rewrite_zip(
        work.model(),
        work.inp / "odd.keras",
        "config.json",
        edit_config(lambda c: first_layer(c).update(class_name="NoSuchLayer")),
    )
    argv = ["--debug", "predict", str(model), str(xray_jpeg(work.inp / "ok.jpg"))]
    done = subprocess.run(
        _console() + argv + ["--out", str(work.out)],
        env=_console_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode != 0
    assert "Traceback" in done.stderr and "SpineSegError" in done.stderr
