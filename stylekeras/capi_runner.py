"""Run a SavedModel through TensorFlow's C API (the C++ loader TF Serving uses), without TF's Python package.

Run as a script, never imported by stylekeras (importing the package would import TensorFlow):

    python capi_runner.py LIBTENSORFLOW_CC EXPORT_DIR PLAN.json

PLAN.json lists runs: {"inputs": [{"name": tensor name, "dtype": "float32" | "float64" | "int32" | "string",
"file": .npy, or the raw bytes of a scalar string}], "outputs": {key: tensor name}, "output_file": .npz}.
Inputs a signature gives defaults for may be left out. Each run's outputs go to its .npz (a string output
as its bytes, uint8); stdout gets one JSON line per run with the status code and message (0 = OK,
3 = INVALID_ARGUMENT), the keys of the string outputs and the seconds TF_SessionRun took.
"""

from __future__ import annotations

import ctypes
import json
import sys
import time

import numpy as np

TF_FLOAT, TF_DOUBLE, TF_INT32, TF_STRING = 1, 2, 3, 7
NUMPY_TYPES = {TF_FLOAT: np.float32, TF_DOUBLE: np.float64, TF_INT32: np.int32}
TF_TYPES = {np.dtype(numpy_type): tf_type for tf_type, numpy_type in NUMPY_TYPES.items()}
TF_TSTRING_SIZE = 24  # sizeof(TF_TString): tensorflow/core/platform/ctstring_internal.h


class TF_Output(ctypes.Structure):
    _fields_ = [("oper", ctypes.c_void_p), ("index", ctypes.c_int)]


def load_library(path: str) -> ctypes.CDLL:
    lib = ctypes.CDLL(path)
    signatures = {
        "TF_NewStatus": ([], ctypes.c_void_p),
        "TF_GetCode": ([ctypes.c_void_p], ctypes.c_int),
        "TF_Message": ([ctypes.c_void_p], ctypes.c_char_p),
        "TF_NewGraph": ([], ctypes.c_void_p),
        "TF_NewSessionOptions": ([], ctypes.c_void_p),
        "TF_LoadSessionFromSavedModel": (
            [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_char_p), ctypes.c_int,
             ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p],
            ctypes.c_void_p,
        ),
        "TF_GraphOperationByName": ([ctypes.c_void_p, ctypes.c_char_p], ctypes.c_void_p),
        "TF_AllocateTensor": ([ctypes.c_int, ctypes.POINTER(ctypes.c_int64), ctypes.c_int, ctypes.c_size_t], ctypes.c_void_p),
        "TF_TensorData": ([ctypes.c_void_p], ctypes.c_void_p),
        "TF_TensorByteSize": ([ctypes.c_void_p], ctypes.c_size_t),
        "TF_NumDims": ([ctypes.c_void_p], ctypes.c_int),
        "TF_Dim": ([ctypes.c_void_p, ctypes.c_int], ctypes.c_int64),
        "TF_DeleteTensor": ([ctypes.c_void_p], None),
        "TF_TensorType": ([ctypes.c_void_p], ctypes.c_int),
        "TF_StringInit": ([ctypes.c_void_p], None),
        "TF_StringCopy": ([ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t], None),
        "TF_StringGetDataPointer": ([ctypes.c_void_p], ctypes.c_void_p),
        "TF_StringGetSize": ([ctypes.c_void_p], ctypes.c_size_t),
        "TF_SessionRun": (
            [ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(TF_Output), ctypes.POINTER(ctypes.c_void_p), ctypes.c_int,
             ctypes.POINTER(TF_Output), ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_void_p, ctypes.c_int,
             ctypes.c_void_p, ctypes.c_void_p],
            None,
        ),
    }
    for name, (argtypes, restype) in signatures.items():
        function = getattr(lib, name)
        function.argtypes, function.restype = argtypes, restype
    return lib


def graph_output(lib: ctypes.CDLL, graph: int, tensor_name: str) -> TF_Output:
    operation, _, index = tensor_name.partition(":")
    handle = lib.TF_GraphOperationByName(graph, operation.encode())
    if not handle:
        raise SystemExit(f"no operation '{operation}' in the loaded graph")
    return TF_Output(handle, int(index or 0))


def to_tensor(lib: ctypes.CDLL, spec: dict) -> int:
    """A TF_Tensor from one planned input: a .npy of float32, float64 or int32, or a file holding a scalar string."""
    if spec["dtype"] == "string":
        with open(spec["file"], "rb") as stream:
            data = stream.read()
        tensor = lib.TF_AllocateTensor(TF_STRING, None, 0, TF_TSTRING_SIZE)
        lib.TF_StringInit(lib.TF_TensorData(tensor))
        lib.TF_StringCopy(lib.TF_TensorData(tensor), data, len(data))
        return tensor
    array = np.require(np.load(spec["file"]), dtype=spec["dtype"], requirements="C")  # keeps 0-d arrays 0-d
    dims = (ctypes.c_int64 * array.ndim)(*array.shape)
    tensor = lib.TF_AllocateTensor(TF_TYPES[array.dtype], dims, array.ndim, array.nbytes)
    ctypes.memmove(lib.TF_TensorData(tensor), array.ctypes.data, array.nbytes)
    return tensor


def from_tensor(lib: ctypes.CDLL, tensor: int) -> np.ndarray:
    """A numpy array from a float32, float64 or int32 TF_Tensor; a scalar string's bytes as uint8."""
    kind = lib.TF_TensorType(tensor)
    if kind == TF_STRING:
        data = lib.TF_StringGetDataPointer(lib.TF_TensorData(tensor))
        return np.frombuffer(ctypes.string_at(data, lib.TF_StringGetSize(lib.TF_TensorData(tensor))), np.uint8).copy()
    shape = [lib.TF_Dim(tensor, axis) for axis in range(lib.TF_NumDims(tensor))]
    buffer = (ctypes.c_char * lib.TF_TensorByteSize(tensor)).from_address(lib.TF_TensorData(tensor))
    return np.frombuffer(buffer, dtype=NUMPY_TYPES[kind]).reshape(shape).copy()


def main(library_path: str, export_dir: str, plan_path: str) -> int:
    lib = load_library(library_path)
    status = lib.TF_NewStatus()
    graph = lib.TF_NewGraph()
    tags = (ctypes.c_char_p * 1)(b"serve")
    session = lib.TF_LoadSessionFromSavedModel(
        lib.TF_NewSessionOptions(), None, export_dir.encode(), tags, 1, graph, None, status
    )
    if lib.TF_GetCode(status) != 0:
        print(json.dumps({"load": lib.TF_GetCode(status), "message": lib.TF_Message(status).decode()}))
        return 1
    with open(plan_path) as stream:
        runs = json.load(stream)
    for run in runs:
        keys = list(run["outputs"])
        inputs = (TF_Output * len(run["inputs"]))(*(graph_output(lib, graph, spec["name"]) for spec in run["inputs"]))
        input_values = (ctypes.c_void_p * len(run["inputs"]))(*(to_tensor(lib, spec) for spec in run["inputs"]))
        outputs = (TF_Output * len(keys))(*(graph_output(lib, graph, run["outputs"][key]) for key in keys))
        output_values = (ctypes.c_void_p * len(keys))()
        started = time.perf_counter()
        lib.TF_SessionRun(session, None, inputs, input_values, len(run["inputs"]), outputs, output_values, len(keys),
                          None, 0, None, status)
        seconds = time.perf_counter() - started
        for value in input_values:
            lib.TF_DeleteTensor(value)  # a string tensor's TF_TStrings with it
        code = lib.TF_GetCode(status)
        strings = []
        if code == 0:
            strings = [key for i, key in enumerate(keys) if lib.TF_TensorType(output_values[i]) == TF_STRING]
            np.savez(run["output_file"], **{key: from_tensor(lib, output_values[i]) for i, key in enumerate(keys)})
            for value in output_values:
                lib.TF_DeleteTensor(value)  # a string tensor's TF_TStrings with it
        message = lib.TF_Message(status).decode() if code else ""
        print(json.dumps({"output_file": run["output_file"], "code": code, "message": message, "strings": strings,
                          "seconds": seconds}), flush=True)
    # The point of this process: TF Serving's loader, with no TensorFlow Python package involved.
    assert "tensorflow" not in sys.modules
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
