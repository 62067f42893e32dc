"""The PyTorch peer: what jcjohnson/neural-style-pt does — VGG19 in torch, the paper's losses, torch's
L-BFGS — on a problem written by bench/peer_benchmark.py (the same weights, images and loss weights as
stylekeras). Run by that script with the python of a venv holding torch; needs only torch and numpy.

    python bench/torch_peer.py PROBLEM.npz step OUT.json        # seconds per loss + gradient, per L-BFGS step
    python bench/torch_peer.py PROBLEM.npz lbfgs OUT.json       # L-BFGS from the photo, snapshots to OUT's folder
    python bench/torch_peer.py PROBLEM.npz neural-style OUT.json  # jcjohnson/neural-style's own defaults (below)

Times are `time.time()` stamps, so the caller can count the process's start-up too. A problem whose
`precision` is "mixed" runs the network under `torch.autocast("cpu", torch.bfloat16)` with the losses in
float32, as stylekeras's precision "mixed" does.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)
# VGG19's convolutions by Keras' names; a 2×2 max pooling ends each block.
BLOCKS = (2, 2, 4, 4, 4)
LAYERS = [f"block{block}_conv{conv}" for block, convs in enumerate(BLOCKS, 1) for conv in range(1, convs + 1)]


class VGG19(torch.nn.Module):
    """VGG19's convolutions up to the deepest `wanted` layer, returning the `wanted` layers' ReLU outputs."""

    def __init__(self, kernels: list[np.ndarray], biases: list[np.ndarray], wanted: set[str]) -> None:
        super().__init__()
        self.convs = torch.nn.ModuleList()
        for kernel, bias in zip(kernels, biases):  # Keras HWIO → torch OIHW
            conv = torch.nn.Conv2d(kernel.shape[2], kernel.shape[3], 3, padding=1)
            conv.weight.data = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
            conv.bias.data = torch.from_numpy(bias)
            conv.requires_grad_(False)
            self.convs.append(conv)
        self.wanted = wanted
        self.depth = max(LAYERS.index(name) for name in wanted) + 1
        self.register_buffer("mean", torch.tensor(CAFFE_BGR_MEAN).view(1, 3, 1, 1))

    def forward(self, rgb: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.caffe_features(rgb.flip(1) * 255.0 - self.mean)  # RGB in [0, 1] → Caffe BGR, as Keras' preprocess_input

    def caffe_features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The `wanted` layers of an image already in Caffe's BGR, mean-subtracted space."""
        features = {}
        for name, conv in zip(LAYERS[:self.depth], self.convs):
            x = F.relu(conv(x))
            if name in self.wanted:
                features[name] = x
            if int(name[-1]) == BLOCKS[int(name[5]) - 1]:  # the block's last convolution
                x = F.max_pool2d(x, 2)
        return features


def normalized_gram(features: torch.Tensor) -> torch.Tensor:
    _, channels, height, width = features.shape
    flat = features.reshape(channels, height * width)
    return flat @ flat.T / (height * width)


def ring_share(height: int, width: int) -> float:
    """The share of a feature map's positions on its outermost ring (stylekeras's `losses.ring_share`)."""
    return 1.0 - max(height - 2, 0) * max(width - 2, 0) / (height * width)


def ring_weighted_gram(features: torch.Tensor, result_shape: tuple[int, int]) -> torch.Tensor:
    """The painting's `normalized_gram` with its outermost ring weighted to the share it has in a result's map
    of (height, width) `result_shape`, as stylekeras's style targets are (`losses.gram_for_ring_share`)."""
    _, channels, height, width = features.shape
    ring = torch.ones(height, width, dtype=torch.bool)
    ring[1:-1, 1:-1] = False
    flat = features.reshape(channels, height * width)
    on_ring = flat[:, ring.reshape(-1)]
    gram, ring_gram = normalized_gram(features), on_ring @ on_ring.T / on_ring.shape[1]
    own, wanted = ring_share(height, width), ring_share(*result_shape)
    return gram + ((wanted - own) / (1.0 - own) if own < 1.0 else 0.0) * (ring_gram - gram)


def neural_style(problem: np.lib.npyio.NpzFile, out_path: Path) -> dict:
    """jcjohnson/neural-style's default run, as neural_style.lua does it: images in Caffe's BGR space scaled
    by 256 (not 255); content loss 5·mean((F − P)²) at relu4_2; style loss Σ_l 100·mean((G_l − A_l)²) over
    relu1_1 … relu5_1 with G = FFᵀ / (C·H·W); total variation 1e-3 · ½Σ(Δx² + Δy²) on the optimized image;
    start from N(0, 0.001²) noise; 1000 iterations of L-BFGS (learning rate 1, history 100, no line search);
    no clamping until the image is saved. Snapshots after each of `problem["snapshots"]` iterations."""
    style_layers = ["block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1"]
    content_layer = "block4_conv2"
    names = [str(name) for name in problem["conv_layers"]]
    model = VGG19([problem[f"kernel_{name}"] for name in names], [problem[f"bias_{name}"] for name in names],
                  {*style_layers, content_layer})
    mean = model.mean

    def preprocess(rgb: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)[None])).flip(1) * 256.0 - mean

    def gram(features: torch.Tensor) -> torch.Tensor:
        flat = features.reshape(features.shape[1], -1)
        return flat @ flat.T / features.numel()

    with torch.no_grad():
        content_target = model.caffe_features(preprocess(problem["content"]))[content_layer]
        style_features = model.caffe_features(preprocess(problem["style"]))
        style_targets = {name: gram(style_features[name]) for name in style_layers}
    torch.manual_seed(int(problem["seed"]))
    image = (torch.randn(1, 3, *problem["content"].shape[:2]) * 0.001).requires_grad_(True)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        features = model.caffe_features(image)
        loss = 5.0 * ((features[content_layer] - content_target) ** 2).mean()
        loss = loss + sum(100.0 * ((gram(features[name]) - style_targets[name]) ** 2).mean() for name in style_layers)
        inner = image[:, :, :-1, :-1]
        loss = loss + 1e-3 * 0.5 * (((inner - image[:, :, :-1, 1:]) ** 2).sum() + ((inner - image[:, :, 1:, :-1]) ** 2).sum())
        loss.backward()
        return loss

    optimizer = torch.optim.LBFGS([image], lr=1.0, max_iter=1, history_size=100, tolerance_grad=-1,
                                  tolerance_change=-1)
    snapshots, done = [], 0
    for until in (int(count) for count in problem["snapshots"]):
        optimizer.param_groups[0].update(max_iter=until - done, max_eval=2 * (until - done))  # no line search: max_iter decides
        total = optimizer.step(closure)
        done = until
        with torch.no_grad():
            pixels = ((image + mean) / 256.0).flip(1).clamp(0, 1)[0].permute(1, 2, 0).numpy()
        path = out_path.parent / f"{out_path.stem}_{done}.npy"
        np.save(path, pixels)
        snapshots.append({"steps": done, "time": time.time(), "loss": total.item(), "path": str(path)})
        print(f"neural-style {done} iterations: loss {total.item():.4g}", flush=True)
    return {"snapshots": snapshots}


def main() -> None:
    problem_path, mode, out_path = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    problem = np.load(problem_path)
    torch.set_num_threads(int(problem["threads"]))
    if mode == "neural-style":
        out_path.write_text(json.dumps({"threads": torch.get_num_threads(), "torch": torch.__version__}
                                       | neural_style(problem, out_path)))
        return
    style_layers = [str(name) for name in problem["style_layers"]]
    content_layer = str(problem["content_layer"])
    names = [str(name) for name in problem["conv_layers"]]  # the convolutions the problem's network has
    model = VGG19([problem[f"kernel_{name}"] for name in names], [problem[f"bias_{name}"] for name in names],
                  {*style_layers, content_layer})
    to_tensor = lambda array: torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)[None]))  # noqa: E731
    content = to_tensor(problem["content"])
    alpha, beta, gamma = (float(problem[name]) for name in ("alpha", "beta", "gamma"))
    layer_weights = {name: float(weight) for name, weight in zip(style_layers, problem["layer_weights"])}
    bfloat16 = str(problem["precision"]) == "mixed"

    def features_of(rgb: torch.Tensor) -> dict[str, torch.Tensor]:
        # The network in bfloat16 where asked, the losses in float32: a bfloat16 Gram matrix makes
        # L-BFGS diverge (stylekeras/losses.py), so neither side computes one.
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bfloat16):
            return {name: value.float() for name, value in model(rgb).items()}

    # The targets from the photo and the painting, as neural-style-pt computes its own: the painting's Gram
    # matrices as stylekeras's targets have them (`ring_weighted_gram`), so both sides minimize the same loss.
    with torch.no_grad():
        content_features = features_of(content)
        content_target = content_features[content_layer]
        style_features = features_of(to_tensor(problem["style"]))
        style_targets = {name: ring_weighted_gram(style_features[name], content_features[name].shape[2:])
                         for name in style_layers}

    image = content.clone().requires_grad_(True)

    def loss() -> torch.Tensor:
        features = features_of(image)
        content_loss = 0.5 * ((features[content_layer] - content_target) ** 2).sum()
        style_loss = sum(layer_weights[name] * ((normalized_gram(features[name]) - style_targets[name]) ** 2).sum()
                         / (4.0 * features[name].shape[1] ** 2) for name in style_layers)
        tv_loss = ((image[:, :, 1:] - image[:, :, :-1]) ** 2).sum() + ((image[:, :, :, 1:] - image[:, :, :, :-1]) ** 2).sum()
        return alpha * content_loss + beta * style_loss + gamma * tv_loss

    # The first `trace_evaluations` points the loss is evaluated at, saved with their time and loss: torch's
    # L-BFGS reports only after a call's `snapshot_every` steps, so a goal met between snapshots is found here.
    traced, trace_count = [], int(problem["trace_evaluations"]) if "trace_evaluations" in problem.files else 0
    line_search = str(problem["line_search"]) if "line_search" in problem.files else None

    evaluated: list[tuple[float, int]] = []  # (when it ended, the iteration it belongs to) per evaluation

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        total = loss()
        total.backward()
        evaluated.append((time.perf_counter(), optimizer.state[image].get("n_iter", 0)))
        if len(traced) < trace_count:
            path = out_path.parent / f"torch_lbfgs_{line_search or 'plain'}_evaluation_{len(traced) + 1}.npy"
            np.save(path, image.detach().clamp(0, 1)[0].permute(1, 2, 0).numpy())
            traced.append({"evaluation": len(traced) + 1, "time": time.time(), "loss": total.item(), "path": str(path)})
        return total

    # neural-style-pt's L-BFGS: learning rate 1, history 100, no tolerance stop; with the problem's
    # `line_search` ("strong_wolfe"), torch's line search, which may evaluate the loss more than once a step.
    iterations_per_call = int(problem["snapshot_every"]) if mode == "lbfgs" else 1
    optimizer = torch.optim.LBFGS([image], lr=1.0, max_iter=iterations_per_call, history_size=100,
                                  tolerance_grad=-1, tolerance_change=-1, line_search_fn=line_search,
                                  max_eval=4 * iterations_per_call if line_search else None)
    result: dict = {"threads": torch.get_num_threads(), "torch": torch.__version__}
    if mode == "step":
        repeats = int(problem["repeats"])
        result["initial_loss"] = closure().item()
        # Torch's style targets against stylekeras's own (the problem's `gram_*`), largest relative difference.
        result["gram_difference"] = max(
            float((style_targets[name] - torch.from_numpy(problem[f"gram_{name}"])).abs().max()
                  / torch.from_numpy(problem[f"gram_{name}"]).abs().max()) for name in style_layers)
        closure()
        evaluations = []
        for _ in range(repeats):
            started = time.perf_counter()
            closure()
            evaluations.append(time.perf_counter() - started)
        # One call of the warm-up's steps, then one timed from the end of its first evaluation, which is of the
        # point the call starts from, to the end of its last: whole steps, each with its update and evaluations
        # (a call without a line search ends with an update it does not evaluate).
        group = optimizer.param_groups[0]
        for steps in (int(problem["warmup"]), repeats + 1):
            group["max_iter"], group["max_eval"] = steps, 4 * steps
            first = len(evaluated)
            optimizer.step(closure)
        (started, first_step), (ended, last_step) = evaluated[first], evaluated[-1]
        result |= {"loss_and_gradient": statistics.median(evaluations),
                   "lbfgs_step": (ended - started) / (last_step - first_step),
                   "evaluations": (len(evaluated) - first - 1) / (last_step - first_step),
                   "finite": bool(torch.isfinite(image).all())}
    else:
        snapshots = []
        for _ in range(int(problem["steps"]) // iterations_per_call):
            total = optimizer.step(closure)  # the loss before the call's steps
            state = optimizer.state[image]  # the step and evaluation counts so far
            pixels = image.detach().clamp(0, 1)[0].permute(1, 2, 0).numpy()
            path = out_path.parent / f"torch_lbfgs_{line_search or 'plain'}_{state['n_iter']}.npy"
            np.save(path, pixels)
            snapshots.append({"steps": state["n_iter"], "evaluations": state["func_evals"], "time": time.time(),
                              "loss": total.item(), "path": str(path)})
            print(f"torch L-BFGS {state['n_iter']} steps: loss {total.item():.4g}", flush=True)
            if not np.isfinite(pixels).all():  # diverged: every later step would be NaN too
                break
        result["snapshots"], result["evaluations"] = snapshots, traced
    out_path.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
