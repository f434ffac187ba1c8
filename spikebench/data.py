"""Datasets and the shared, hashed train/val/test splits.

Every dataset is loaded as uint8 images `x` (N, C, H, W) with int64 labels `y`, plus a
content hash of the decompressed source bytes. `make_splits` draws deterministic
train/val/test indices; `split_hash` fingerprints the content and the indices, and
every result row records it. `load_prepared` reloads the data named in the manifest
written by the `prepare` stage and refuses to go on when the content changed.

Datasets:
  fashion_mnist  Debian's dataset-fashion-mnist idx files (the default)
  digits         scikit-learn's bundled 8x8 digits (smoke profile and tests)
  mnist          the standard idx files, in a directory you give (data.data_dir)
  cifar10        the standard binary version (cifar-10-batches-bin), in data.data_dir
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from spikebench.errors import DatasetError

DATASETS = ("fashion_mnist", "digits", "mnist", "cifar10")
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
IDX_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}
CIFAR_TRAIN = [f"data_batch_{i}.bin" for i in range(1, 6)]
CIFAR_TEST = ["test_batch.bin"]
CIFAR_RECORD = 1 + 3 * 32 * 32


@dataclass
class RawDataset:
    """All images of a dataset; `n_train` first rows are the official training set."""

    name: str
    x: np.ndarray  # uint8, (N, C, H, W)
    y: np.ndarray  # int64, (N,)
    n_train: int
    has_test: bool  # False: no official test set, `prepare` splits one off
    content_hash: str

    @property
    def num_classes(self) -> int:
        return int(self.y.max()) + 1


# --- idx (MNIST family) -------------------------------------------------------------

def _find_file(directory: Path, stem: str, hint: str) -> Path:
    for candidate in (directory / f"{stem}.gz", directory / stem):
        if candidate.exists():
            return candidate
    raise DatasetError(f"{directory / (stem + '.gz')}: dataset file missing; {hint}")


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                return handle.read()
        return path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise DatasetError(f"{path}: cannot read ({err}); the file is corrupt, reinstall or replace it") from None


def parse_idx(data: bytes, path: Path | str, expect_dims: int) -> np.ndarray:
    """Parse an idx file (unsigned-byte payload) and check its header against its size."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DatasetError(f"{path}: not an idx ubyte file (bad magic number); replace the file")
    ndim = data[3]
    if ndim != expect_dims:
        raise DatasetError(f"{path}: expected {expect_dims} dimensions, header says {ndim}; wrong file?")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(f"{path}: truncated header; the file is corrupt, replace it")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape))
    if len(data) != expected:
        raise DatasetError(f"{path}: {len(data)} bytes but the header announces {expected}; the file is truncated or corrupt, replace it")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def load_idx_dataset(name: str, directory: Path, hint: str) -> RawDataset:
    digest = hashlib.sha256()
    arrays = {}
    for key, stem in IDX_FILES.items():
        path = _find_file(directory, stem, hint)
        data = _read_bytes(path)
        digest.update(data)
        arrays[key] = parse_idx(data, path, 3 if key.endswith("_x") else 1)
    for part in ("train", "test"):
        if len(arrays[f"{part}_x"]) != len(arrays[f"{part}_y"]):
            raise DatasetError(f"{directory}: {part} images and labels differ in count; replace the files")
    x = np.concatenate([arrays["train_x"], arrays["test_x"]])[:, None]
    y = np.concatenate([arrays["train_y"], arrays["test_y"]]).astype(np.int64)
    return RawDataset(name, x, y, len(arrays["train_x"]), True, digest.hexdigest())


# --- CIFAR-10 binary ----------------------------------------------------------------

def load_cifar10(directory: Path) -> RawDataset:
    hint = "download the CIFAR-10 binary version and set data.data_dir to its cifar-10-batches-bin directory"
    digest = hashlib.sha256()
    parts = []
    for stem in CIFAR_TRAIN + CIFAR_TEST:
        path = directory / stem
        if not path.exists():
            raise DatasetError(f"{path}: dataset file missing; {hint}")
        data = _read_bytes(path)
        if len(data) == 0 or len(data) % CIFAR_RECORD:
            raise DatasetError(f"{path}: size {len(data)} is not a whole number of {CIFAR_RECORD}-byte records; the file is corrupt")
        digest.update(data)
        parts.append(np.frombuffer(data, dtype=np.uint8).reshape(-1, CIFAR_RECORD))
    records = np.concatenate(parts)
    n_train = sum(len(p) for p in parts[: len(CIFAR_TRAIN)])
    x = records[:, 1:].reshape(-1, 3, 32, 32)
    y = records[:, 0].astype(np.int64)
    if y.max() > 9:
        raise DatasetError(f"{directory}: label {y.max()} out of range 0..9; not CIFAR-10 binary files")
    return RawDataset("cifar10", x, y, n_train, True, digest.hexdigest())


# --- scikit-learn digits ------------------------------------------------------------

def load_digits() -> RawDataset:
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    # 0..16 grey levels scaled to the 0..255 range the other datasets use.
    x = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    y = bunch.target.astype(np.int64)
    digest = hashlib.sha256(x.tobytes() + y.tobytes()).hexdigest()
    return RawDataset("digits", x, y, len(x), False, digest)


def load_dataset(name: str, data_dir: str | None = None) -> RawDataset:
    """Load a dataset by name; `data_dir` overrides where its files are looked for."""
    if name == "fashion_mnist":
        directory = Path(data_dir) if data_dir else FASHION_MNIST_DIR
        hint = "run `apt-get install dataset-fashion-mnist` (make setup does) or set data.data_dir to a directory with the idx files"
        return load_idx_dataset(name, directory, hint)
    if name == "mnist":
        if not data_dir:
            raise DatasetError("params.yaml: data.data_dir must name the directory holding the MNIST idx files (train-images-idx3-ubyte.gz, ...)")
        return load_idx_dataset(name, Path(data_dir), "put the four MNIST idx files there (train-images-idx3-ubyte.gz, ...)")
    if name == "cifar10":
        if not data_dir:
            raise DatasetError("params.yaml: data.data_dir must name the cifar-10-batches-bin directory (CIFAR-10 binary version)")
        return load_cifar10(Path(data_dir))
    if name == "digits":
        return load_digits()
    raise DatasetError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")


# --- splits -------------------------------------------------------------------------

@dataclass
class Splits:
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def make_splits(raw: RawDataset, val_fraction: float, test_fraction: float, seed: int) -> Splits:
    """Deterministic index splits; the official test set is kept when there is one."""
    rng = np.random.default_rng(seed)
    pool = rng.permutation(raw.n_train)
    if raw.has_test:
        test = np.arange(raw.n_train, len(raw.x))
    else:
        n_test = int(round(test_fraction * len(pool)))
        test, pool = np.sort(pool[:n_test]), pool[n_test:]
    n_val = int(round(val_fraction * len(pool)))
    return Splits(train=np.sort(pool[n_val:]), val=np.sort(pool[:n_val]), test=np.sort(test))


def split_hash(content_hash: str, splits: Splits) -> str:
    digest = hashlib.sha256(content_hash.encode())
    for part in (splits.train, splits.val, splits.test):
        digest.update(part.astype(np.int64).tobytes())
    return digest.hexdigest()[:16]


def write_prepared(directory: str | Path, raw: RawDataset, splits: Splits, seed: int, data_dir: str | None = None) -> dict:
    """Write `splits.npz` and `manifest.json` into `directory` (atomically)."""
    import io

    from spikebench.io import atomic_write_bytes, atomic_write_json

    directory = Path(directory)
    buffer = io.BytesIO()
    np.savez(buffer, train=splits.train, val=splits.val, test=splits.test)
    atomic_write_bytes(directory / "splits.npz", buffer.getvalue())
    manifest = {
        "dataset": raw.name,
        "data_dir": data_dir,
        "content_hash": raw.content_hash,
        "split_hash": split_hash(raw.content_hash, splits),
        "seed": seed,
        "sizes": {"train": len(splits.train), "val": len(splits.val), "test": len(splits.test)},
        "input_shape": list(raw.x.shape[1:]),
        "num_classes": raw.num_classes,
    }
    atomic_write_json(directory / "manifest.json", manifest)
    return manifest


@dataclass
class SplitData:
    """Float tensors in [0, 1] for each split, with the provenance every row records."""

    dataset: str
    split_hash: str
    input_shape: tuple[int, ...]
    num_classes: int
    train: tuple[torch.Tensor, torch.Tensor]
    val: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]

    def calibration(self, size: int, seed: int) -> torch.Tensor:
        """A fixed random subset of the *training* split (for normalisation, PCA, ...)."""
        x = self.train[0]
        if size <= 0:
            raise DatasetError(f"calibration size must be >= 1, got {size}")
        generator = torch.Generator().manual_seed(seed)
        index = torch.randperm(len(x), generator=generator)[: min(size, len(x))]
        return x[index]


def load_prepared(directory: str | Path = "data/prepared") -> SplitData:
    """Reload the dataset named by `prepare`'s manifest, refusing changed content."""
    directory = Path(directory)
    manifest_path = directory / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text())
        with np.load(directory / "splits.npz") as npz:
            splits = Splits(npz["train"], npz["val"], npz["test"])
    except FileNotFoundError:
        raise DatasetError(f"{manifest_path}: prepared splits missing; run `dvc repro prepare`") from None
    except (ValueError, KeyError, OSError) as err:
        raise DatasetError(f"{directory}: prepared splits unreadable ({err}); run `dvc repro prepare`") from None
    raw = load_dataset(manifest["dataset"], manifest.get("data_dir"))
    if raw.content_hash != manifest["content_hash"]:
        raise DatasetError(
            f"{manifest_path}: {raw.name} content hash {raw.content_hash[:12]} does not match the prepared "
            f"{manifest['content_hash'][:12]}; the dataset files changed, run `dvc repro prepare`"
        )
    if split_hash(raw.content_hash, splits) != manifest["split_hash"]:
        raise DatasetError(f"{directory}/splits.npz: split hash mismatch with manifest.json; run `dvc repro prepare`")
    return to_split_data(raw, splits)


def to_split_data(raw: RawDataset, splits: Splits) -> SplitData:
    """Float tensors in [0, 1] for each split of an in-memory dataset."""
    x = torch.from_numpy(raw.x.astype(np.float32) / 255.0)
    y = torch.from_numpy(raw.y)
    pick = lambda idx: (x[idx], y[idx])  # noqa: E731
    return SplitData(
        dataset=raw.name,
        split_hash=split_hash(raw.content_hash, splits),
        input_shape=tuple(raw.x.shape[1:]),
        num_classes=raw.num_classes,
        train=pick(torch.from_numpy(splits.train)),
        val=pick(torch.from_numpy(splits.val)),
        test=pick(torch.from_numpy(splits.test)),
    )


def check_split_hash(expected: str, found: str, what: str) -> None:
    """Refuse to combine artefacts made from different data splits."""
    if expected != found:
        raise DatasetError(f"{what} was made from split {found}, the prepared data is split {expected}; re-run the pipeline (dvc repro)")
