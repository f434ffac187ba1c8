"""Property tests: any params value or damaged dataset file ends in a valid result or a
one-line SpikebenchError, never another exception."""

from __future__ import annotations

import gzip
import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from baselines.baseline import BaselineParams
from baselines.prepare import DataParams
from spikebench.data import FASHION_MNIST_DIR, IDX_FILES, load_dataset, parse_idx
from spikebench.errors import DatasetError, ParamsError
from spikebench.params import load_section, read_params_file

yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=6,
)
fuzz_settings = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.mark.parametrize(("cls", "section"), [(BaselineParams, "baseline"), (DataParams, "data")])
@fuzz_settings
@given(data=st.data())
def test_any_params_value_is_accepted_or_named(cls, section, data):
    key = data.draw(st.sampled_from([*cls.__dataclass_fields__, "unknown_key"]))
    value = data.draw(yaml_values)
    try:
        raw = read_params_file()  # the real file with one key damaged (or added)
        load_section(cls, section, raw={**raw, "profile": "default", section: {**raw[section], key: value}})
    except ParamsError as err:
        message = str(err)
        assert "\n" not in message and (key in message or section in message)


@fuzz_settings
@given(payload=st.binary(max_size=64), dims=st.integers(1, 3))
def test_arbitrary_idx_bytes_never_crash(payload, dims):
    try:
        array = parse_idx(payload, "fuzz.idx", expect_dims=dims)
    except DatasetError as err:
        assert "fuzz.idx" in str(err) and "\n" not in str(err)
    else:
        assert array.ndim == dims


@pytest.fixture(scope="module")
def damaged_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("fashion")
    for stem in IDX_FILES.values():
        shutil.copy(FASHION_MNIST_DIR / f"{stem}.gz", directory / f"{stem}.gz")
    return directory


@settings(max_examples=8, deadline=None)  # each example decodes all 70k images
@given(cut=st.integers(1, 7840), flip=st.integers(0, 15), stem=st.sampled_from([IDX_FILES["test_x"], IDX_FILES["test_y"]]))
def test_damaged_dataset_files_end_in_one_line_error(damaged_dir, cut, flip, stem):
    path = damaged_dir / f"{stem}.gz"
    original = path.read_bytes()
    data = bytearray(gzip.decompress(original))
    if flip < 8:
        data[flip % 4] ^= 0xFF  # corrupt the magic number / dimension count
    path.write_bytes(gzip.compress(bytes(data[: len(data) - cut])))
    try:
        with pytest.raises(DatasetError) as info:
            load_dataset("fashion_mnist", str(damaged_dir))
        assert stem in str(info.value) and "\n" not in str(info.value)
    finally:
        path.write_bytes(original)
