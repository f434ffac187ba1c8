"""Datasets, hashes and splits: real files, real failure modes."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil

import numpy as np
import pytest

from spikebench.data import (
    FASHION_MNIST_DIR,
    IDX_FILES,
    check_split_hash,
    load_dataset,
    load_prepared,
    make_splits,
    parse_idx,
    split_hash,
    write_prepared,
)
from spikebench.errors import DatasetError

# md5 of the decompressed Debian files (REFERENCE.md section 2)
FASHION_MD5 = {
    "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
    "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
    "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
}


@pytest.fixture
def fashion_copy(tmp_path):
    """A private copy of the Debian idx files that a test may damage."""
    for stem in IDX_FILES.values():
        shutil.copy(FASHION_MNIST_DIR / f"{stem}.gz", tmp_path / f"{stem}.gz")
    return tmp_path


def test_fashion_mnist_matches_published_checksums_and_shape():
    for stem, md5 in FASHION_MD5.items():
        with gzip.open(FASHION_MNIST_DIR / f"{stem}.gz") as handle:
            assert hashlib.md5(handle.read()).hexdigest() == md5
    raw = load_dataset("fashion_mnist")
    assert raw.x.shape == (70000, 1, 28, 28) and raw.x.dtype == np.uint8
    assert raw.n_train == 60000 and raw.has_test and raw.num_classes == 10


def test_content_hash_is_of_decompressed_bytes(fashion_copy, tmp_path):
    """Re-compressing the files (as Debian did) must not change the hash."""
    original = load_dataset("fashion_mnist", str(fashion_copy)).content_hash
    stem = IDX_FILES["test_y"]
    data = gzip.decompress((fashion_copy / f"{stem}.gz").read_bytes())
    (fashion_copy / f"{stem}.gz").write_bytes(gzip.compress(data, compresslevel=1))
    assert load_dataset("fashion_mnist", str(fashion_copy)).content_hash == original
    # ...and an uncompressed copy is read too, with the same hash
    (fashion_copy / f"{stem}.gz").unlink()
    (fashion_copy / stem).write_bytes(data)
    assert load_dataset("fashion_mnist", str(fashion_copy)).content_hash == original


def test_digits_hash_is_stable_and_pixels_span_uint8():
    a, b = load_dataset("digits"), load_dataset("digits")
    assert a.content_hash == b.content_hash
    assert a.x.shape == (1797, 1, 8, 8) and a.x.max() == 255 and not a.has_test


def test_splits_are_disjoint_deterministic_and_cover_the_pool():
    raw = load_dataset("digits")
    s1 = make_splits(raw, val_fraction=0.1, test_fraction=0.2, seed=3)
    s2 = make_splits(raw, val_fraction=0.1, test_fraction=0.2, seed=3)
    s3 = make_splits(raw, val_fraction=0.1, test_fraction=0.2, seed=4)
    parts = [set(s1.train), set(s1.val), set(s1.test)]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert len(parts[0] | parts[1] | parts[2]) == len(raw.x)
    assert split_hash(raw.content_hash, s1) == split_hash(raw.content_hash, s2)
    assert split_hash(raw.content_hash, s1) != split_hash(raw.content_hash, s3)


def test_official_test_set_is_kept():
    raw = load_dataset("fashion_mnist")
    splits = make_splits(raw, val_fraction=0.1, test_fraction=0.2, seed=0)
    assert np.array_equal(splits.test, np.arange(60000, 70000))
    assert len(splits.train) == 54000 and len(splits.val) == 6000


def test_missing_fashion_files_name_the_apt_package(tmp_path):
    with pytest.raises(DatasetError, match="apt-get install dataset-fashion-mnist"):
        load_dataset("fashion_mnist", str(tmp_path))


def test_mnist_without_directory_says_where_to_put_files(tmp_path):
    with pytest.raises(DatasetError, match="data.data_dir"):
        load_dataset("mnist")
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte\.gz"):
        load_dataset("mnist", str(tmp_path))


def test_mnist_reader_reads_standard_idx_files(fashion_copy):
    raw = load_dataset("mnist", str(fashion_copy))  # same file format as MNIST
    assert raw.name == "mnist" and raw.x.shape == (70000, 1, 28, 28)


def test_truncated_idx_file_is_rejected(fashion_copy):
    path = fashion_copy / f"{IDX_FILES['test_x']}.gz"
    data = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(data[:-100]))
    with pytest.raises(DatasetError, match="truncated or corrupt"):
        load_dataset("fashion_mnist", str(fashion_copy))


def test_corrupt_gzip_is_rejected(fashion_copy):
    path = fashion_copy / f"{IDX_FILES['train_y']}.gz"
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(DatasetError, match="corrupt"):
        load_dataset("fashion_mnist", str(fashion_copy))


def test_wrong_magic_is_rejected():
    with pytest.raises(DatasetError, match="bad magic"):
        parse_idx(b"\x01\x02\x03\x04" + bytes(20), "x.idx", expect_dims=1)


def test_unknown_dataset_lists_the_choices():
    with pytest.raises(DatasetError, match="fashion_mnist, digits, mnist, cifar10"):
        load_dataset("imagenet")


def test_cifar10_binary_reader(tmp_path):
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        records = rng.integers(0, 256, size=(4, 3073), dtype=np.uint8)
        records[:, 0] = rng.integers(0, 10, size=4)
        (tmp_path / name).write_bytes(records.tobytes())
    raw = load_dataset("cifar10", str(tmp_path))
    assert raw.x.shape == (24, 3, 32, 32) and raw.n_train == 20
    (tmp_path / "test_batch.bin").write_bytes(bytes(3000))
    with pytest.raises(DatasetError, match="test_batch.bin.*records"):
        load_dataset("cifar10", str(tmp_path))


def test_prepared_splits_refuse_changed_content(tmp_path):
    raw = load_dataset("digits")
    splits = make_splits(raw, 0.1, 0.2, seed=0)
    manifest = write_prepared(tmp_path, raw, splits, seed=0)
    data = load_prepared(tmp_path)
    assert data.split_hash == manifest["split_hash"] and len(data.test[0]) == len(splits.test)
    assert float(data.train[0].max()) == 1.0

    blob = json.loads((tmp_path / "manifest.json").read_text())
    blob["content_hash"] = "0" * 64
    (tmp_path / "manifest.json").write_text(json.dumps(blob))
    with pytest.raises(DatasetError, match="does not match"):
        load_prepared(tmp_path)


def test_prepared_splits_missing_says_run_prepare(tmp_path):
    with pytest.raises(DatasetError, match="dvc repro prepare"):
        load_prepared(tmp_path)


def test_split_hash_mismatch_between_artefacts_is_refused():
    check_split_hash("abc", "abc", "models/ann.pt")
    with pytest.raises(DatasetError, match="models/ann.pt was made from split def"):
        check_split_hash("abc", "def", "models/ann.pt")
