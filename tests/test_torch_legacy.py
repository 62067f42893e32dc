"""Reading legacy torch.save files without torch, and refusing anything but tensors."""

import os
import pickle

import numpy as np
import pytest

from stylekeras.torch_legacy import MAGIC_NUMBER, PROTOCOL_VERSION, TorchFileError, load_tensors
from stylekeras.weights import QUANTIZED_VGG19_PATH


def test_reads_the_shipped_quantized_vgg19():
    tensors = load_tensors(QUANTIZED_VGG19_PATH)
    assert len(tensors) == 16 * 3
    codes, table, bias = (tensors[f"block5_conv4_{part}"] for part in ("W_q", "W_table", "b"))
    assert codes.dtype == np.uint8 and codes.shape == (512, 512, 3, 3)
    assert table.dtype == np.float32 and table.shape == (256,) and np.all(np.diff(table) > 0)  # sorted centroids
    assert bias.dtype == np.float32 and bias.shape == (512,)
    assert len(np.unique(codes)) > 200  # the codes use the table, they are not a constant


class _RunsCode:
    def __reduce__(self):
        return os.system, ("touch should-not-exist",)


def test_refuses_a_file_that_would_run_code(tmp_path):
    path = tmp_path / "evil.bin"
    header = b"".join(pickle.dumps(value, protocol=2) for value in (MAGIC_NUMBER, PROTOCOL_VERSION, {}))
    path.write_bytes(header + pickle.dumps({"weight": _RunsCode()}, protocol=2))
    with pytest.raises(TorchFileError, match="refuses to load"):
        load_tensors(path)
    assert not (tmp_path / "should-not-exist").exists() and not os.path.exists("should-not-exist")


@pytest.mark.parametrize("cut", [10, 4000, 20_000_000])
def test_truncated_or_foreign_files_are_refused(tmp_path, cut):
    path = tmp_path / "cut.bin"
    path.write_bytes(QUANTIZED_VGG19_PATH.read_bytes()[:cut])
    with pytest.raises(TorchFileError):
        load_tensors(path)


def test_a_zip_torch_file_or_other_bytes_are_refused(tmp_path):
    path = tmp_path / "other.bin"
    path.write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(TorchFileError):
        load_tensors(path)
