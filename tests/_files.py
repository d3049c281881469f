"""Write small, real files in the real formats for tests (no mocks).

Every function writes into a folder it is given (a test's ``tmp_path``) and returns what
it wrote. Import it from any test: ``from _files import write_aasce_layout`` (pytest puts
``tests/`` on ``sys.path``), or ``from tests._files import ...`` when run from the root.

Images are synthetic X-rays: a dark background with a bright spine column drawn from
68 landmarks (:func:`synthetic_landmarks`), so the landmarks, the trimap and the image
agree. Landmarks are ``(68, 2)`` ``(x, y)`` pixels as in the data set.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from PIL import Image

from napari_spine_seg.data.aasce import write_landmarks_mat
from napari_spine_seg.data.phantom import make_phantom
from napari_spine_seg.trimap import column_mask, trimap_from_landmarks

# --------------------------------------------------------------------------- landmarks


def synthetic_landmarks(height: int, width: int, curve: float = 0.0) -> np.ndarray:
    """68 landmarks ``(x, y)`` of a spine in an image of ``height`` x ``width`` pixels.

    17 vertebrae from 8 % to 92 % of the height, each 30 % of the width wide, centred on
    ``x = width / 2 + curve * width * sin(pi * t)`` (t from 0 at the top to 1 at the
    bottom) and tilted along that curve. ``curve=0`` is a straight spine; ``±0.1`` a
    gentle C-shaped curve. Corners in the data set's order TL, TR, BL, BR.
    """
    t = (np.arange(17) + 0.5) / 17
    cy = height * (0.08 + 0.84 * t)
    cx = width / 2 + curve * width * np.sin(np.pi * t)
    slope = curve * width * np.pi * np.cos(np.pi * t) / (0.84 * height)  # dx/dy
    theta = np.arctan(slope)  # tilt of the endplates (radians)
    half_w, half_h = 0.15 * width, 0.84 * height / 17 * 0.4
    corners = np.array([[-half_w, -half_h], [half_w, -half_h], [-half_w, half_h], [half_w, half_h]])
    out = np.empty((17, 4, 2))
    for i in range(17):
        c, s = np.cos(theta[i]), np.sin(theta[i])
        # endplates follow the curve: rotate by -theta so that they stay perpendicular to it
        rot = np.array([[c, s], [-s, c]])
        out[i] = corners @ rot.T + [cx[i], cy[i]]
    return out.reshape(68, 2)


def synthetic_xray(landmarks: np.ndarray, shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """A ``uint8`` image of `shape` (rows, cols): noisy background, bright spine column."""
    rng = np.random.default_rng(seed)
    rows, cols = shape
    ramp = np.linspace(30, 60, rows)[:, None] * np.ones((1, cols))
    image = ramp + rng.normal(0, 6, shape)
    image[column_mask(landmarks, shape)] += 120
    return np.clip(image, 0, 255).astype(np.uint8)


def reference_cobb_angles(landmarks: np.ndarray, height: float) -> np.ndarray:
    """The AASCE challenge's reference Cobb angles (degrees), as docs/aasce-format.md gives them.

    For writing ``angles.csv`` of test data sets only; the package's own computation is
    ``napari_spine_seg.spine.cobb``.
    """
    p = np.asarray(landmarks, dtype=np.float64)
    left = (p[0::4] + p[2::4]) / 2
    right = (p[1::4] + p[3::4]) / 2
    vec = right - left
    unit = vec / np.linalg.norm(vec, axis=1, keepdims=True)
    angles = np.degrees(np.arccos(np.clip(unit @ unit.T, 0.0, 1.0)))
    pos1 = angles.argmax(axis=1)
    maxt = angles.max(axis=1)
    pos2 = int(maxt.argmax())
    first = maxt[pos2]
    mid = (p[0::2] + p[1::2]) / 2
    last = mid[-1]
    ll = (mid[:-2, 1] - last[1]) / (mid[0, 1] - last[1]) - (mid[:-2, 0] - last[0]) / (
        mid[0, 0] - last[0] if mid[0, 0] != last[0] else 1e-12
    )
    prod = np.outer(ll, ll)
    s_shaped = abs(prod.sum() - np.abs(prod).sum()) >= 1e-4
    j = int(pos1[pos2])
    if not s_shaped:
        second, third = angles[0, pos2], angles[16, j]
    elif mid[2 * pos2, 1] + mid[2 * j, 1] < height:
        second, third = angles[pos2, : pos2 + 1].max(), angles[j, j:].max()
    else:
        k = int(angles[pos2, : pos2 + 1].argmax())
        second, third = angles[pos2, k], angles[k, : k + 1].max()
    return np.array([first, second, third])


# --------------------------------------------------------------------------- image files


def write_jpeg(path: str | os.PathLike, pixels: np.ndarray, quality: int = 95) -> Path:
    """Write a ``uint8`` ``(H, W)`` or ``(H, W, 3)`` array as a baseline JPEG."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(path, format="JPEG", quality=quality)
    return path


def write_png(path: str | os.PathLike, pixels: np.ndarray) -> Path:
    """Write a PNG: ``uint8`` gray, RGB or RGBA, or ``uint16`` gray (16-bit PNG)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(pixels)).save(path, format="PNG")
    return path


def write_tiff(path: str | os.PathLike, pixels: np.ndarray, **kwargs) -> Path:
    """Write `pixels` (any dtype; ``(H, W)`` or ``(H, W, 3)``) with ``tifffile.imwrite``.

    Extra keyword arguments (``photometric="minisblack"``, ``planarconfig=...``) go to
    ``tifffile.imwrite``.
    """
    import tifffile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, np.asarray(pixels), **kwargs)
    return path


def write_dicom(
    path: str | os.PathLike,
    pixels: np.ndarray,
    monochrome1: bool = False,
    slope: float = 1,
    intercept: float = 0,
    spacing: tuple[float, float] | None = None,
    *,
    bits_stored: int | None = None,
    preamble: bool = True,
) -> Path:
    """Write a single-frame grayscale DICOM file (uncompressed, explicit VR little endian).

    Parameters
    ----------
    path : path-like
    pixels : (H, W) array of uint8 or uint16
        Stored values.
    monochrome1 : bool
        Write PhotometricInterpretation MONOCHROME1 (low values displayed white).
    slope, intercept : float
        RescaleSlope and RescaleIntercept (written only when not 1 and 0).
    spacing : (row, col) mm, optional
        PixelSpacing.
    bits_stored : int, optional
        BitsStored (default: the dtype's size).
    preamble : bool
        False writes no 128-byte preamble and no ``DICM`` magic (as some old files).
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    pixels = np.ascontiguousarray(pixels)
    bits = pixels.dtype.itemsize * 8
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"  # digital X-ray
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME1" if monochrome1 else "MONOCHROME2"
    ds.BitsAllocated = bits
    ds.BitsStored = bits_stored or bits
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 0
    if slope != 1 or intercept != 0:
        ds.RescaleSlope = slope
        ds.RescaleIntercept = intercept
    if spacing is not None:
        ds.PixelSpacing = [float(spacing[0]), float(spacing[1])]
    ds.PixelData = pixels.tobytes()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if preamble:
        ds.save_as(path, enforce_file_format=True)
    else:
        ds.save_as(path, implicit_vr=False, little_endian=True)
    return path


def write_trimap(path: str | os.PathLike, trimap: np.ndarray) -> Path:
    """Write a 2-D ``uint8`` array as a single-channel PNG as it is (no checks)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(trimap, dtype=np.uint8), mode="L").save(path, format="PNG")
    return path


def truncate_file(path: str | os.PathLike, keep: float = 0.5) -> Path:
    """Cut a file to the first `keep` fraction of its bytes (as an interrupted copy does)."""
    path = Path(path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


# --------------------------------------------------------------------------- label files


def write_mat(path: str | os.PathLike, **variables) -> Path:
    """Write a MAT v5 file with ``scipy.io.savemat``: ``write_mat(p, p2=landmarks)``."""
    from scipy.io import savemat

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:  # a file object: savemat would append ".mat" to a name
        savemat(f, variables)
    return path


def write_mat_v73(path: str | os.PathLike, **variables) -> Path:
    """Write a MATLAB v7.3 (HDF5) file as MATLAB does: 512-byte header, column-major data."""
    import h5py

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w", userblock_size=512) as f:
        for name, value in variables.items():
            arr = np.asarray(value, dtype=np.float64)
            f.create_dataset(name, data=arr.T)  # MATLAB stores 68 x 2 as 2 x 68
            f[name].attrs["MATLAB_class"] = np.bytes_("double")
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."
    with open(path, "r+b") as f:
        f.write(header.ljust(116) + b"\x00" * 8 + b"\x00\x02IM")
    return path


def write_label_csvs(
    split_dir: str | os.PathLike,
    names: list[str],
    landmarks: list[np.ndarray],
    shapes: list[tuple[int, int]],
    angles: list[np.ndarray] | None = None,
) -> Path:
    """Write ``filenames.csv``, ``landmarks.csv`` (normalised) and ``angles.csv`` of a split.

    Parameters
    ----------
    split_dir : path-like
        ``labels/<split>``.
    names : list of str
        Image file names, one row each.
    landmarks : list of (68, 2) arrays
        Pixel ``(x, y)``; written as 68 x's then 68 y's divided by width and height.
    shapes : list of (rows, cols)
        Each image's size.
    angles : list of (3,) arrays, optional
        Written to ``angles.csv`` when given.
    """
    split_dir = Path(split_dir)
    split_dir.mkdir(parents=True, exist_ok=True)
    (split_dir / "filenames.csv").write_text("".join(f"{n}\n" for n in names))
    rows = []
    for lm, (h, w) in zip(landmarks, shapes, strict=True):
        lm = np.asarray(lm, dtype=np.float64)
        rows.append(np.concatenate([lm[:, 0] / w, lm[:, 1] / h]))
    np.savetxt(split_dir / "landmarks.csv", np.array(rows), delimiter=",", fmt="%.10f")
    if angles is not None:
        np.savetxt(split_dir / "angles.csv", np.array(angles), delimiter=",", fmt="%.6f")
    return split_dir


# --------------------------------------------------------------------------- layouts


def aasce_name(split: str, i: int) -> str:
    """An AASCE-like image name with spaces, e.g. ``"sunhl-1th-02-Jan-2017-162 A AP.jpg"``."""
    month = "Jan" if split.startswith("train") else "Mar"
    return f"sunhl-1th-{i % 28 + 1:02d}-{month}-2017-{162 + i} A AP.jpg"


def write_aasce_layout(
    root: str | os.PathLike,
    n_train: int = 3,
    n_test: int = 2,
    size: tuple[int, int] = (240, 96),
    *,
    splits: dict[str, int] | None = None,
    csv: bool = True,
    seed: int = 0,
) -> Path:
    """Write a tiny data set in the AASCE layout and return `root`.

    ``root/data/<split>/<name>.jpg``, ``root/labels/<split>/<name>.jpg.mat`` (``p2``) and,
    when `csv`, ``filenames.csv``, ``landmarks.csv`` and ``angles.csv`` (the reference
    Cobb angles of the landmarks). Image ``i`` of a split has curve 0 (straight) for
    ``i == 0`` and a gentle curve (±0.06 … ±0.12 of the width) otherwise. A split of
    0 images is not written at all.

    Parameters
    ----------
    root : path-like
    n_train, n_test : int
        Images in ``training`` and ``test`` (ignored when `splits` is given).
    size : (rows, cols)
        Image size; every image has this size.
    splits : dict of str to int, optional
        Other split names and counts, e.g. ``{"train": 2, "val": 1, "test": 1}``.
    csv : bool
        Also write the three CSV files of each split.
    seed : int
        Seed of the image noise.
    """
    root = Path(root)
    splits = {"training": n_train, "test": n_test} if splits is None else splits
    for split, n in splits.items():
        if n == 0:
            continue  # no empty split folders: as if the split did not exist
        data_dir = root / "data" / split
        label_dir = root / "labels" / split
        data_dir.mkdir(parents=True, exist_ok=True)
        label_dir.mkdir(parents=True, exist_ok=True)
        names, all_landmarks, angles = [], [], []
        for i in range(n):
            name = aasce_name(split, i)
            curve = 0.0 if i == 0 else (-1) ** i * (0.06 + 0.02 * (i % 4))
            lm = synthetic_landmarks(size[0], size[1], curve)
            write_jpeg(data_dir / name, synthetic_xray(lm, size, seed=seed + i))
            write_mat(label_dir / f"{name}.mat", p2=lm)
            names.append(name)
            all_landmarks.append(lm)
            angles.append(reference_cobb_angles(lm, size[0]))
        if csv:
            write_label_csvs(label_dir, names, all_landmarks, [size] * n, angles)
    return root


def write_aasce(
    root: str | os.PathLike,
    splits: Mapping[str, tuple[int, int]] | None = None,
    *,
    name: str = "ph {i:02d} AP.jpg",
    shape: tuple[int, int] = (128, 64),
) -> Path:
    """Write a tiny set of phantom X-rays (:func:`~napari_spine_seg.data.phantom.make_phantom`)
    in the AASCE layout, without CSV files, and return `root`.

    ``root/data/<split>/<name>`` and ``root/labels/<split>/<name>.mat``.

    Parameters
    ----------
    root : path-like
    splits : dict of str to (int, int), optional
        Each split's number of images and the noise seed of its first image (image
        ``i`` gets seed ``first + i``); default ``{"training": (3, 0)}``.
    name : str
        Each image's file name, formatted with ``split`` and ``i``.
    shape : (rows, cols)
        Size of every image.
    """
    root = Path(root)
    for split, (n, first_seed) in (splits or {"training": (3, 0)}).items():
        (root / "data" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            ph = make_phantom(
                np.random.default_rng(first_seed + i), height=shape[0], width=shape[1]
            )
            file_name = name.format(split=split, i=i)
            Image.fromarray(ph.image).save(root / "data" / split / file_name, quality=95)
            write_landmarks_mat(root / "labels" / split / f"{file_name}.mat", ph.landmarks)
    return root


def write_many_samples(
    root: str | os.PathLike, n: int = 481, split: str = "training", size: tuple[int, int] = (32, 16)
) -> Path:
    """Write an AASCE split of `n` tiny images and ``.mat`` files quickly; return `root`.

    Every image is the same small JPEG and every ``.mat`` the same landmarks (bytes are
    encoded once and copied), for tests of speed with the data set's real file count.
    """
    root = Path(root)
    data_dir = root / "data" / split
    label_dir = root / "labels" / split
    lm = synthetic_landmarks(*size)
    jpeg = write_jpeg(root / "one.jpg", synthetic_xray(lm, size)).read_bytes()
    mat = write_mat(root / "one.mat", p2=lm).read_bytes()
    (root / "one.jpg").unlink()
    (root / "one.mat").unlink()
    data_dir.mkdir(parents=True, exist_ok=True)
    label_dir.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        name = aasce_name(split, i)
        (data_dir / name).write_bytes(jpeg)
        (label_dir / f"{name}.mat").write_bytes(mat)
    return root


def write_folder_layout(
    root: str | os.PathLike,
    n: int = 3,
    size: tuple[int, int] = (120, 48),
    where: str = "trimaps",
    suffix: str = ".jpg",
) -> Path:
    """Write a folder of images with trimap PNGs and return `root`.

    Parameters
    ----------
    root : path-like
    n : int
        Number of images, named ``xray 0.jpg``, ``xray 1.jpg``, …
    size : (rows, cols)
    where : {"trimaps", "masks", "beside"}
        Trimaps ``<stem>.png`` in a ``trimaps/`` or ``masks/`` subfolder, or beside the
        images (then `suffix` must not be ``.png``).
    suffix : str
        Image format: ``.jpg``, ``.png`` or ``.tif``.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    mask_dir = root if where == "beside" else root / where
    for i in range(n):
        lm = synthetic_landmarks(size[0], size[1], 0.05 * i)
        image = synthetic_xray(lm, size, seed=i)
        stem = f"xray {i}"
        if suffix == ".png":
            write_png(root / f"{stem}{suffix}", image)
        elif suffix in (".tif", ".tiff"):
            write_tiff(root / f"{stem}{suffix}", image)
        else:
            write_jpeg(root / f"{stem}{suffix}", image)
        write_trimap(mask_dir / f"{stem}.png", trimap_from_landmarks(lm, size))
    return root


def write_pets_layout(
    root: str | os.PathLike, n: int = 3, size: tuple[int, int] = (48, 64)
) -> Path:
    """Write a tiny Oxford-IIIT Pets layout and return `root`.

    ``images/<Breed>_<i>.jpg`` (RGB), ``annotations/trimaps/<Breed>_<i>.png`` (1/2/3),
    ``annotations/trainval.txt`` and ``test.txt`` (the last image is a test image), and,
    as in the real archive, hidden ``._*.png`` files beside the trimaps to be ignored.
    """
    root = Path(root)
    rng = np.random.default_rng(0)
    names = [f"Abyssinian_{i + 1}" for i in range(n)]
    for stem in names:
        rgb = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        write_jpeg(root / "images" / f"{stem}.jpg", rgb)
        trimap = np.full(size, 2, dtype=np.uint8)
        trimap[size[0] // 4 : 3 * size[0] // 4, size[1] // 4 : 3 * size[1] // 4] = 1
        trimap[size[0] // 4, :] = 3
        write_trimap(root / "annotations" / "trimaps" / f"{stem}.png", trimap)
        (root / "annotations" / "trimaps" / f"._{stem}.png").write_bytes(b"\x00\x05\x16\x07")
    ann = root / "annotations"
    header = "#Image CLASS-ID SPECIES BREED ID\n"
    (ann / "trainval.txt").write_text(header + "".join(f"{s} 1 1 1\n" for s in names[:-1]))
    (ann / "test.txt").write_text(header + f"{names[-1]} 1 1 1\n")
    return root


# --------------------------------------------------------------------------- input checks


def tree_checksums(folder: str | os.PathLike) -> dict[str, tuple[str, int]]:
    """SHA-256 and permission bits of every file under `folder`, keyed by relative path.

    Compare the result before and after a command to show that it changed, added and
    removed no file there: ``assert tree_checksums(root) == before``.
    """
    import hashlib

    folder = Path(folder)
    sums = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            sums[path.relative_to(folder).as_posix()] = (digest, path.stat().st_mode & 0o7777)
    return sums


def write_untrained_vertebra_model(path: str | os.PathLike):
    """A tiny untrained vertebrae model (depth 2, 4 filters, 64 × 32) saved at `path`: it
    finds no 17 vertebrae, so what predict does without landmarks can be tested fast.
    Returns the loaded model (``model.files.save_model``'s return)."""
    from napari_spine_seg.model.builders import build_model
    from napari_spine_seg.model.files import ModelInfo, save_model
    from napari_spine_seg.model.targets import VERTEBRA_CLASSES

    info = ModelInfo(
        preset="unet",
        options={"depth": 2, "filters": 4},
        input_size=(64, 32),
        classes=[dict(c) for c in VERTEBRA_CLASSES],
        outputs=["trimap", "vertebrae"],
    )
    return save_model(build_model("unet", (64, 32, 1), depth=2, filters=4), path, info)
