"""The parser for dlib's portable serialization and the layout of the ResNet model file."""

import math
from pathlib import Path

import numpy as np
import pytest
from missing import unavailable

from faceunlock.vision.dlib_format import DlibFormatError, Pool, Reader, load
from faceunlock.vision.embed import default_weights_path

FILE_SIZE = 22_466_066


def reader(hex_bytes: str) -> Reader:
    return Reader(bytes.fromhex(hex_bytes))


@pytest.fixture(scope="module")
def weights_path() -> Path:
    try:
        return default_weights_path()
    except FileNotFoundError as e:
        unavailable(str(e))


@pytest.fixture(scope="module")
def net(weights_path):
    return load(weights_path)


# primitives


@pytest.mark.parametrize(
    "hex_bytes, value",
    [("01 00", 0), ("01 05", 5), ("81 04", -4), ("02 00 7d", 32000), ("03 01 02 03", 0x030201)],
)
def test_integer(hex_bytes, value):
    r = reader(hex_bytes)
    assert r.integer() == value
    r.at_end()


def test_integer_bad_control_byte():
    with pytest.raises(DlibFormatError, match="control byte 0x11 at byte offset 0"):
        reader("11 00").integer()
    with pytest.raises(DlibFormatError, match="control byte 0x09"):
        reader("09" + "00" * 9).integer()
    with pytest.raises(DlibFormatError, match="control byte 0x00"):
        reader("00").integer()


def test_unsigned_rejects_sign_bit():
    assert reader("01 96").unsigned() == 150
    with pytest.raises(DlibFormatError, match="control byte"):
        reader("81 04").unsigned()


def test_float_examples_from_the_doc():
    assert reader("01 10 81 04").real() == 1.0
    assert reader("03 62 90 f5 81 11").real() == float(np.float32(122.782))
    assert reader("01 00 01 00").real() == 0.0
    assert reader("81 03 01 00").real() == -3.0


def test_float_special_exponents():
    assert reader("01 00 02 00 7d").real() == math.inf
    assert reader("01 00 02 01 7d").real() == -math.inf
    assert math.isnan(reader("01 00 02 02 7d").real())


def test_float_exponent_is_at_most_16_bits():
    with pytest.raises(DlibFormatError, match="control byte 0x03 at byte offset 2"):
        reader("01 01 03 00 00 01").real()


def test_string_and_bool():
    r = reader("01 05 " + b"con_4".hex() + " 31 30")
    assert r.string() == "con_4"
    assert r.boolean() is True
    assert r.boolean() is False
    r.at_end()
    with pytest.raises(DlibFormatError, match="bad bool byte 0x01 at byte offset 0"):
        reader("01").boolean()


def test_empty_tensor():
    r = reader("01 02 01 00 01 00 01 00 01 00")
    assert r.tensor().shape == (0, 0, 0, 0)
    r.at_end()


def test_tensor_and_alias():
    values = np.array([1.5, -2.0], dtype="<f4")
    r = Reader(bytes.fromhex("01 02 01 02 01 01 01 01 01 01") + values.tobytes())
    np.testing.assert_array_equal(r.tensor().reshape(-1), values)
    assert reader("01 01 01 03 01 01 01 02 01 02").alias() == (3, 1, 2, 2)
    with pytest.raises(DlibFormatError, match="version 1, expected 2"):
        reader("01 01 01 00 01 00 01 00 01 00").tensor()


def test_truncated_primitives_name_the_offset():
    with pytest.raises(DlibFormatError, match="truncated.*byte offset 1"):
        reader("02 00").integer()
    with pytest.raises(DlibFormatError, match="truncated.*byte offset 10"):
        reader("01 02 01 01 01 01 01 01 01 01 00 00").tensor()


def test_trailing_bytes():
    r = reader("01 00 ff")
    r.integer()
    with pytest.raises(DlibFormatError, match="1 trailing bytes.*byte offset 2"):
        r.at_end()


# the real file


def test_real_file_layout(weights_path, net):
    assert weights_path.stat().st_size == FILE_SIZE
    assert len(net.convs) == 29
    assert len(net.affines) == 29
    assert net.layers.count("relu_") == 29
    assert net.layers.count("add_prev_") == 14
    assert net.chip_size == (150, 150)
    assert net.margin == pytest.approx(0.04)
    assert net.distance_threshold == pytest.approx(0.6)
    np.testing.assert_allclose(net.means, (122.782, 117.001, 104.298), atol=1e-4)
    n_params = sum(c.weight.size + c.bias.size for c in net.convs) + net.fc.size
    assert n_params == 5_607_488
    assert sum(a.gamma.size + a.beta.size for a in net.affines) == 7_104
    assert net.fc.shape == (128, 256)


def test_real_file_geometry(net):
    stem = net.convs[0]
    assert stem.weight.shape == (32, 3, 7, 7)
    assert (stem.stride, stem.pad) == ((2, 2), (0, 0))
    for conv in net.convs[1:]:
        assert conv.weight.shape[2:] == (3, 3)
        expected_pad = (1, 1) if conv.stride == (1, 1) else (0, 0)
        assert conv.pad == expected_pad
    assert [c.stride[0] for c in net.convs].count(2) == 5
    assert net.pools[0] == Pool("max", (3, 3), (2, 2), (0, 0))
    assert net.pools[1:5] == [Pool("avg", (2, 2), (2, 2), (0, 0))] * 4
    assert net.pools[5].size == (0, 0)
    assert all(np.isfinite(c.weight).all() for c in net.convs)


def test_truncated_file_is_rejected(weights_path, tmp_path):
    data = weights_path.read_bytes()
    short = tmp_path / "short.dat"
    short.write_bytes(data[:-1])
    with pytest.raises(DlibFormatError, match="truncated"):
        load(short)
    short.write_bytes(data[: len(data) // 2])
    with pytest.raises(DlibFormatError, match=r"truncated.*byte offset \d+"):
        load(short)


def test_trailing_bytes_are_rejected(weights_path, tmp_path):
    longer = tmp_path / "long.dat"
    longer.write_bytes(weights_path.read_bytes() + b"\x00")
    with pytest.raises(DlibFormatError, match=f"1 trailing bytes.*byte offset {FILE_SIZE}"):
        load(longer)


def test_wrong_header_is_rejected(weights_path, tmp_path):
    data = bytearray(weights_path.read_bytes())
    data[4:17] = b"loss_metric_3"
    bad = tmp_path / "bad.dat"
    bad.write_bytes(bytes(data))
    with pytest.raises(DlibFormatError, match="loss_metric_3.*byte offset 2"):
        load(bad)
