"""stylekeras.distributed: a folder on a real local Ray cluster, a worker killed mid-photo, nothing lost or done twice."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cli_run import run_cli
from stopping import StopAt
from stylekeras import distributed
from stylekeras.checkpoint import load_checkpoint
from stylekeras.errors import StyleKerasError
from stylekeras.image_io import to_uint8

# Random weights (mechanics only); long enough per photo (about 5 s) to be killed in the middle.
RUN = ["--size", "48", "--steps", "60", "--weights", "random", "--optimizer", "adam", "--precision", "float32",
       "--seed", "7", "--init", "noise", "--checkpoint-every", "2"]


def _photos(folder: Path, content_path: Path, count: int) -> Path:
    folder.mkdir()
    with Image.open(content_path) as image:
        for index in range(count):
            image.rotate(90 * index).save(folder / f"photo{index}.png")
    return folder


def _workers() -> list[int]:
    """The pids of the Ray actors that run stylekeras' workers (their process title names the class)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cmdline").read_bytes().startswith(b"ray::StylizeWorker"):
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def _stylekeras(*args, env=None, **popen):
    return subprocess.Popen([sys.executable, "-m", "stylekeras", "transfer", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})}, **popen)


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image)


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the worker processes in /proc")
def test_a_worker_killed_mid_photo_loses_nothing_and_the_images_equal_a_local_run(tmp_path, content_path, style_path):
    photos = _photos(tmp_path / "photos", content_path, 4)
    cluster_out, local_out = tmp_path / "cluster", tmp_path / "local"
    # The local batch with the threads of a worker (one of two CPUs): float results depend on the thread count.
    local = _stylekeras(photos, style_path, "-o", local_out, *RUN, "--quiet", env={"TF_NUM_INTRAOP_THREADS": "1"})
    run = _stylekeras(photos, style_path, "-o", f"file://{cluster_out}", *RUN, "--ray", "local", "--workers-per-node", "2",
                      "--json")
    deadline = time.monotonic() + 240
    checkpoints = []
    while len(checkpoints) < 2 or min(load_checkpoint(path).meta["done"] for path in checkpoints) < 6:
        assert run.poll() is None and time.monotonic() < deadline, run.communicate()
        time.sleep(0.05)
        checkpoints = list(cluster_out.glob("*.checkpoint.npz"))
    busy = {path.name.removesuffix("_style.checkpoint.npz") + ".png" for path in checkpoints}
    os.kill(_workers()[0], signal.SIGKILL)  # no handler runs: the photo's checkpoint on disk is all that is left
    stdout, stderr = run.communicate(timeout=240)
    assert run.returncode == 0, stderr
    summary = json.loads(stdout)

    outputs = sorted(cluster_out.glob("*.png"))
    assert [path.name for path in outputs] == [f"photo{index}_style.png" for index in range(4)]
    assert sorted(summary["written"]) == [str(path) for path in outputs]  # each photo written once
    assert summary["failed"] == [] and summary["skipped"] == [] and summary["stop_reason"] is None
    (retried,) = summary["retried"]
    assert Path(retried["content"]).name in busy and retried["tries"] == 2
    assert 6 <= retried["resumed_from"] < 60 and retried["resumed_from"] % 2 == 0  # from its checkpoint
    assert not list(cluster_out.glob("*.checkpoint.npz"))  # finished: nothing left to resume
    assert "1 run again after their worker died" in stderr

    _, local_stderr = local.communicate(timeout=240)
    assert local.returncode == 0, local_stderr
    for output in outputs:
        np.testing.assert_array_equal(_pixels(output), _pixels(local_out / output.name))

    # Run again: every photo is done with these settings, so nothing is stylized twice.
    written_at = [path.stat().st_mtime_ns for path in outputs]
    again = _stylekeras(photos, style_path, "-o", cluster_out, *RUN, "--ray", "local", "--workers-per-node", "2", "--json")
    stdout, stderr = again.communicate(timeout=240)
    assert again.returncode == 0, stderr
    assert json.loads(stdout)["skipped"] == [str(path) for path in outputs]
    assert [path.stat().st_mtime_ns for path in outputs] == written_at


def test_without_ray_the_option_fails_in_one_line(tmp_path, content_path, style_path, monkeypatch):
    real = distributed.importlib.util.find_spec
    monkeypatch.setattr(distributed.importlib.util, "find_spec", lambda name: None if name == "ray" else real(name))
    result = run_cli("transfer", tmp_path, style_path, "--ray", "local")
    assert result.exit_code == 2
    assert result.output.strip() == 'error: --ray: Ray is not installed; to run on Ray: pip install "stylekeras[ray]"'


@pytest.mark.parametrize("args, message", [
    (["--ray", "local"], "--ray: CONTENT must be a folder of photos, a quoted pattern or a folder URL"),
    (["--ray"], "--ray: CONTENT must be a folder of photos, a quoted pattern or a folder URL"),  # alone: local
    (["--workers-per-node", "2"], "--workers-per-node and --gpus-per-worker: for a run on Ray; add --ray"),
])
def test_cluster_options_are_checked_before_any_work(tmp_path, content_path, style_path, args, message):
    result = run_cli("transfer", content_path, style_path, "-o", tmp_path / "out.png", *args)
    assert result.exit_code == 2 and result.output.strip() == f"error: {message}"
    assert not (tmp_path / "out.png").exists()


def test_ray_alone_means_local_and_takes_no_photo_for_an_address(tmp_path, content_path, style_path):
    from stylekeras.cli import _with_ray_address

    assert _with_ray_address(["--ray", "photos/", "s.jpg"]) == ["--ray", "local", "photos/", "s.jpg"]
    assert _with_ray_address(["photos/", "s.jpg", "--ray"]) == ["photos/", "s.jpg", "--ray", "local"]
    assert _with_ray_address(["--ray", "-q", "p"]) == ["--ray", "local", "-q", "p"]
    for address in ("auto", "local", "10.0.0.1:6379", "ray://head:10001"):
        assert _with_ray_address(["p", "s", "--ray", address]) == ["p", "s", "--ray", address]
    # Parsed as the command parses it: the photo stays CONTENT, so the error is about CONTENT being one file.
    result = run_cli("transfer", "--ray", content_path, style_path, "-o", tmp_path / "out")
    assert result.output.strip() == "error: --ray: CONTENT must be a folder of photos, a quoted pattern or a folder URL"


@pytest.mark.parametrize("options, message", [
    ({"workers_per_node": 0}, "`workers_per_node=0` must be at least 1"),
    ({"gpus_per_worker": -1}, "`gpus_per_worker=-1` must not be negative"),
    ({"attempts": 0}, "`attempts=0` must be at least 1"),
    ({"address": ""}, "`address` is empty"),
])
def test_cluster_settings_name_the_bad_parameter(options, message):
    with pytest.raises(StyleKerasError, match=message):
        distributed.ClusterSettings(**options)


def test_the_python_api_gives_each_photo_the_image_of_a_run_in_this_process(tmp_path, content_path, style_path):
    import stylekeras

    photos = _photos(tmp_path / "photos", content_path, 2)
    network = dict(backbone="vgg16", weights="random", style_layers=("block1_conv1", "block2_conv1"),
                   content_layers=("block2_conv2",), seed=1, precision="float32")
    settings = stylekeras.TransferSettings(size=32, steps=5, optimizer="adam", init="noise")
    # One worker on this machine's every CPU: as many TensorFlow threads as this process, so the same floats.
    summary = distributed.transfer_folder(photos, style_path, tmp_path / "out", settings=settings, quiet=True,
                                          **network)
    assert summary.failed == [] and summary.retried == [] and len(summary.written) == 2
    stylizer = stylekeras.Stylizer(**network)
    for photo in sorted(photos.iterdir()):
        expected = stylizer.transfer(photo, style_path, settings=settings).image
        written = tmp_path / "out" / f"{photo.stem}_style.png"
        np.testing.assert_array_equal(_pixels(written), to_uint8(expected))


def test_a_worker_reads_and_writes_urls_and_resumes_from_an_uploaded_checkpoint(tmp_path, content_path, style_path):
    """memory:// stands for any fsspec scheme (s3://, gs://); the worker runs in this process."""
    import fsspec

    import stylekeras
    from stylekeras.report import read_report

    fs, bucket = fsspec.filesystem("memory"), f"memory://ray-{tmp_path.name}"
    photos = _photos(tmp_path / "photos", content_path, 2)
    for photo in photos.iterdir():
        fs.put_file(str(photo), f"{bucket}/photos/{photo.name}")
    network = dict(backbone="vgg16", weights="random", style_layers=("block1_conv1", "block2_conv1"),
                   content_layers=("block2_conv2",), seed=1, precision="float32")
    settings = stylekeras.TransferSettings(size=32, steps=6, optimizer="adam", init="noise")
    stylizer = stylekeras.Stylizer(**network)
    # A run of photo0 stopped at step 4 by a dead worker: its last checkpoint is in the bucket.
    checkpoint = tmp_path / "photo0_style.checkpoint.npz"
    stylizer.transfer(photos / "photo0.png", style_path, settings=settings, checkpoint=checkpoint, checkpoint_every=2,
                      callback=StopAt(4))
    stopped_at = load_checkpoint(checkpoint).meta["done"]
    fs.put_file(str(checkpoint), f"{bucket}/out/{checkpoint.name}")

    contents = distributed.locate_photos(f"{bucket}/photos")
    folder = distributed.prepare_output_folder(f"{bucket}/out")
    job_options = dict(settings=settings, style_pixels=[stylekeras.load_image(style_path)], masks=None, options={},
                       save_every=0, max_pixels=10**6, checkpoint_every=2, resume=False, logdir=None,
                       progress_gif=None, contact_sheet=None, style_paths=[str(style_path)], flags={})
    worker = distributed.StylizeWorker(distributed.WorkerRecipe(network, job_options))
    outputs = [str(distributed.batch_module.output_for(content, folder, style_path)) for content in contents]
    outcomes = [worker.stylize([content], [output], resume=True)[0] for content, output in zip(contents, outputs)]

    assert [outcome.output for outcome in outcomes] == outputs and not any(outcome.error for outcome in outcomes)
    assert [outcome.resumed_from for outcome in outcomes] == [stopped_at, 0] and stopped_at == 4
    assert not fs.exists(f"{bucket}/out/{checkpoint.name}")  # finished: nothing left to resume
    for content, output in zip(contents, outputs):
        local = tmp_path / Path(output).name
        fs.get_file(output, str(local))
        assert read_report(local)["inputs"]["content"] == content  # the URL, not the worker's scratch copy
        expected = stylizer.transfer(photos / Path(content).name, style_path, settings=settings).image
        np.testing.assert_array_equal(_pixels(local), to_uint8(expected))
    assert all(outcome.skipped for outcome in worker.stylize(contents, outputs, resume=False))  # done: not again


def test_checkpoints_are_uploaded_when_rewritten_and_removed_when_the_run_deletes_them(tmp_path):
    import fsspec

    fs, url = fsspec.filesystem("memory"), f"memory://uploads-{tmp_path.name}/run.checkpoint.npz"
    checkpoint = tmp_path / "run.checkpoint.npz"
    with distributed._CheckpointUploads({checkpoint: url}) as uploads:
        checkpoint.write_bytes(b"step 2")
        deadline = time.monotonic() + 10
        while not fs.exists(url):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert fs.cat_file(url) == b"step 2"
        checkpoint.write_bytes(b"step 4, stopped")
        os.utime(checkpoint, ns=(time.time_ns() + 10**9,) * 2)  # a new mtime even on a coarse clock
    assert fs.cat_file(url) == b"step 4, stopped"  # the last pass on leaving: what a resumed run needs
    with uploads:
        checkpoint.unlink()  # the run finished
    assert not fs.exists(url)


def test_urls_need_ray(tmp_path, style_path):
    result = run_cli("transfer", "s3://bucket/photos", style_path, "-o", tmp_path / "out")
    assert result.exit_code == 2
    assert result.output.strip() == "error: 's3://bucket/photos': URLs are read and written on runs on Ray; add --ray"


class _FakeRay:
    """What `_start_workers` asks of Ray: the nodes, and actors created with options (recorded)."""

    def __init__(self, nodes):
        self._nodes, self.created = nodes, []

    def nodes(self):
        return self._nodes

    def remote(self, cls):
        fake = self

        class Actor:
            @staticmethod
            def options(**options):
                return type("Creator", (), {"remote": staticmethod(lambda recipe: fake.created.append(options) or options)})
        return Actor


NODES = [{"NodeID": "a" * 56, "Alive": True, "Resources": {"CPU": 8.0, "GPU": 2.0}},
         {"NodeID": "b" * 56, "Alive": True, "Resources": {"CPU": 4.0}},
         {"NodeID": "c" * 56, "Alive": False, "Resources": {"CPU": 64.0, "GPU": 8.0}}]


@pytest.mark.parametrize("workers_per_node, gpus_per_worker, expected, placement", [
    (2, 0.0, [(4.0, 0.0, "4", "a"), (4.0, 0.0, "4", "a"), (2.0, 0.0, "2", "b"), (2.0, 0.0, "2", "b")],
     "4 workers on 2 nodes (2/4 CPUs each)"),
    (4, 0.5, [(2.0, 0.5, "2", "a")] * 4, "4 workers on 1 node (2 CPUs, 0.5 GPUs each)"),
    (4, 1.0, [(4.0, 1.0, "4", "a")] * 2, "2 workers on 1 node (4 CPUs, 1 GPU each)"),
])
def test_workers_share_each_live_nodes_cpus_and_gpus(workers_per_node, gpus_per_worker, expected, placement):
    ray = _FakeRay(NODES)
    cluster = distributed.ClusterSettings("auto", workers_per_node, gpus_per_worker)
    workers, said = distributed._start_workers(ray, cluster, recipe=None)
    assert said == placement
    assert [(options["num_cpus"], options["num_gpus"], options["runtime_env"]["env_vars"]["TF_NUM_INTRAOP_THREADS"],
             options["scheduling_strategy"].node_id[0]) for options in ray.created] == expected
    assert all(options["max_restarts"] == -1 and options["scheduling_strategy"].soft for options in ray.created)


def test_a_cluster_without_room_for_a_worker_is_one_line():
    cluster = distributed.ClusterSettings("auto", 1, gpus_per_worker=4)
    with pytest.raises(StyleKerasError, match="has no node for a worker with 4 GPU each"):
        distributed._start_workers(_FakeRay(NODES), cluster, recipe=None)
