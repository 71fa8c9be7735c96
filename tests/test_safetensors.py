"""The safetensors reader/writer: round trips, and every malformed file is a FileFormatError."""

import json
import struct

import numpy as np
import pytest

from engine.errors import FileFormatError
from engine.files import safetensors_io as st


def _raw(header: dict, body: bytes = b"", header_bytes: bytes | None = None) -> bytes:
    head = header_bytes if header_bytes is not None else json.dumps(header).encode()
    return struct.pack("<Q", len(head)) + head + body


def test_round_trip_keeps_dtypes_shapes_values_and_metadata(tmp_path):
    rng = np.random.default_rng(0)
    tensors = {
        "h1.weight": rng.normal(size=(3, 4)).astype(np.float32),
        "h1.bias": rng.normal(size=3),
        "bn.num_batches_tracked": np.asarray(7, dtype=np.int64),
        "empty": np.zeros((0, 5), dtype=np.float32),
        "scalar": np.asarray(1.5, dtype=np.float32),
    }
    path = tmp_path / "w.safetensors"
    st.save_file(path, tensors, {"format": "pt"})
    back, meta = st.load_file(path)
    assert meta == {"format": "pt"}
    assert set(back) == set(tensors)
    for k, v in tensors.items():
        assert back[k].dtype == v.dtype and back[k].shape == v.shape
        assert np.array_equal(back[k], v)
        assert back[k].flags.writeable


def test_header_is_8_byte_aligned_little_endian_json():
    data = st.dumps({"a": np.arange(3, dtype=np.float32)})
    (n,) = struct.unpack("<Q", data[:8])
    assert (8 + n) % 8 == 0
    header = json.loads(data[8:8 + n])
    assert header["a"] == {"dtype": "F32", "shape": [3], "data_offsets": [0, 12]}
    assert np.frombuffer(data[8 + n:], dtype="<f4").tolist() == [0.0, 1.0, 2.0]


def test_reads_files_written_by_the_reference_package(tmp_path):
    ref = pytest.importorskip("safetensors.numpy")
    path = tmp_path / "ref.safetensors"
    ref.save_file({"x": np.arange(6, dtype=np.float64).reshape(2, 3)}, str(path))
    back, _ = st.load_file(path)
    assert np.array_equal(back["x"], np.arange(6.0).reshape(2, 3))
    mine = tmp_path / "mine.safetensors"
    st.save_file(mine, {"y": np.ones((2, 2), dtype=np.float32)})
    assert np.array_equal(ref.load_file(str(mine))["y"], np.ones((2, 2)))


def test_writer_refuses_unsupported_dtypes():
    with pytest.raises(ValueError):
        st.dumps({"a": np.zeros(2, dtype=np.int8)})


GOOD = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}


@pytest.mark.parametrize("data, words", [
    (b"", "truncated"),
    (b"\x05\x00\x00", "truncated"),
    (struct.pack("<Q", 10**12) + b"{}", "header claims"),
    (struct.pack("<Q", 100) + b"{}", "truncated"),
    (_raw({}, header_bytes=b"\xff\xfe"), "UTF-8"),
    (_raw({}, header_bytes=b"{not json"), "not valid JSON"),
    (_raw({}, header_bytes=b"[1, 2]"), "not a JSON object"),
    (_raw({}, bytes(8), b'{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, '
          b'"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}'), "appears twice"),
    (_raw({"a": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]}}, bytes(4)), "dtype"),
    (_raw({"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, bytes(8)), "shape"),
    (_raw({"a": {"dtype": "F32", "shape": [2.0], "data_offsets": [0, 8]}}, bytes(8)), "shape"),
    (_raw({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, bytes(8)), "needs"),
    (_raw({"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}}, bytes(8)), "offsets"),
    (_raw(GOOD, bytes(4)), "truncated"),
    (_raw(GOOD, bytes(12)), "belong to none"),
    (_raw({"a": GOOD["a"], "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}},
          bytes(12)), "overlaps"),
    (_raw({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, bytes(8)), "gap"),
    (_raw({"a": {"dtype": "F32", "shape": [2]}}, bytes(8)), "exactly"),
    (_raw({"__metadata__": {"k": 1}, **GOOD}, bytes(8)), "__metadata__"),
    (_raw({}, header_bytes=b'{"a": NaN}'), "not allowed"),
    (_raw({}, header_bytes=b"[" * 100_000 + b"]" * 100_000), "nests"),
])
def test_malformed_files_give_one_clear_error(data, words):
    with pytest.raises(FileFormatError, match=words):
        st.loads(data, "w.safetensors")


def test_value_count_is_capped_before_allocating():
    header = {"a": {"dtype": "F64", "shape": [10**6, 10**6], "data_offsets": [0, 8 * 10**12]}}
    with pytest.raises(FileFormatError, match="more than"):
        st.loads(_raw(header, b""), "w.safetensors")
    with pytest.raises(FileFormatError, match="more than"):
        st.loads(st.dumps({"a": np.zeros(20)}), "w.safetensors", max_values=10)


def test_every_truncation_is_a_file_format_error():
    data = st.dumps({"a": np.arange(10, dtype=np.float32), "b": np.ones((2, 3))})
    for cut in range(len(data)):
        with pytest.raises(FileFormatError):
            st.loads(data[:cut], "w.safetensors")


def test_missing_file_is_a_file_format_error(tmp_path):
    with pytest.raises(FileFormatError, match="Cannot read"):
        st.load_file(tmp_path / "nope.safetensors")
