"""Run a SavedModel through TensorFlow's C API (the C++ loader TF Serving uses), without TF's Python package.

Run as a script, never imported by stylekeras (importing the package would import TensorFlow):

    python capi_runner.py LIBTENSORFLOW_CC EXPORT_DIR PLAN.json

PLAN.json lists runs: {"input": tensor name, "input_file": .npy, "outputs": {key: tensor name},
"output_file": .npz}. Each run's float32 outputs go to its .npz; stdout gets one JSON line per run with
the status code and message (0 = OK, 3 = INVALID_ARGUMENT).
"""

import ctypes
import json
import sys

import numpy as np

TF_FLOAT = 1


class TF_Output(ctypes.Structure):
    _fields_ = [("oper", ctypes.c_void_p), ("index", ctypes.c_int)]


def load_library(path):
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


def graph_output(lib, graph, tensor_name):
    operation, _, index = tensor_name.partition(":")
    handle = lib.TF_GraphOperationByName(graph, operation.encode())
    if not handle:
        raise SystemExit(f"no operation '{operation}' in the loaded graph")
    return TF_Output(handle, int(index or 0))


def to_tensor(lib, array):
    array = np.ascontiguousarray(array, dtype=np.float32)
    dims = (ctypes.c_int64 * array.ndim)(*array.shape)
    tensor = lib.TF_AllocateTensor(TF_FLOAT, dims, array.ndim, array.nbytes)
    ctypes.memmove(lib.TF_TensorData(tensor), array.ctypes.data, array.nbytes)
    return tensor


def from_tensor(lib, tensor):
    shape = [lib.TF_Dim(tensor, axis) for axis in range(lib.TF_NumDims(tensor))]
    buffer = (ctypes.c_char * lib.TF_TensorByteSize(tensor)).from_address(lib.TF_TensorData(tensor))
    return np.frombuffer(buffer, dtype=np.float32).reshape(shape).copy()


def main(library_path, export_dir, plan_path):
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
        inputs = (TF_Output * 1)(graph_output(lib, graph, run["input"]))
        input_values = (ctypes.c_void_p * 1)(to_tensor(lib, np.load(run["input_file"])))
        outputs = (TF_Output * len(keys))(*(graph_output(lib, graph, run["outputs"][key]) for key in keys))
        output_values = (ctypes.c_void_p * len(keys))()
        lib.TF_SessionRun(session, None, inputs, input_values, 1, outputs, output_values, len(keys), None, 0, None, status)
        lib.TF_DeleteTensor(input_values[0])
        code = lib.TF_GetCode(status)
        if code == 0:
            np.savez(run["output_file"], **{key: from_tensor(lib, output_values[i]) for i, key in enumerate(keys)})
            for value in output_values:
                lib.TF_DeleteTensor(value)
        message = lib.TF_Message(status).decode() if code else ""
        print(json.dumps({"output_file": run["output_file"], "code": code, "message": message}))
    # The point of this process: TF Serving's loader, with no TensorFlow Python package involved.
    assert "tensorflow" not in sys.modules
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
