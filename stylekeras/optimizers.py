"""The optimizers that move the image: Adam (Kingma & Ba 2015) and an in-graph L-BFGS.

`adam_update` and `lbfgs_update` are the two steps as pure functions of tensors, the one implementation
behind both the library's `Adam` and `LBFGS` (state in variables, one step per call) and the served
stylizer's loops `adam_minimize` and `lbfgs_minimize` (state carried through a `tf.while_loop`,
`stylekeras.serving`). Adam is Keras' Adam, with its defaults.

Both are steppable one iteration per `tf.function` call, and both can be rebuilt around another set of
state variables (`with_state`), so one trace of a step serves every optimizer of the same kind and
settings: `stylize.optimize` traces its step once for all the scales, photos and frames of a process.

L-BFGS is the optimizer of Gatys et al. and jcjohnson/neural-style's default. This follows torch.optim.LBFGS
as jcjohnson/neural-style uses it (step 1): each step is −H·g with H the L-BFGS inverse Hessian over the last
`history` (s, y) pairs, the one the two-loop recursion of Nocedal & Wright (Algorithm 7.4) applies. It is
applied in its compact form (Byrd, Nocedal & Schnabel 1994, eq. 3.1), from the pairs' inner products kept
between steps: a step passes over the stored pairs in four matrix products instead of the recursion's
4 × `history` dependent vector operations, each on a copy of one pair, and costs less (BENCHMARKS.md,
"Design choices").
Because each call is one iteration, progress bars, snapshots and NaN guards work as with Adam.

The first step (at each scale, and after a restart) is a steepest-descent one that moves the pixels by an RMS
of `first_step_rms`, not torch's min(1, 1/‖g‖₁)·g: on an image of 10⁵–10⁶ values that moves no pixel by a
grey level, and the curvature pair measured over so short a step makes the next step overshoot the loss
6–350× (BENCHMARKS.md, "Design choices").

Unlike torch's default, a step that raises the loss is shortened (`LBFGS.safeguard`): without it the
first unit steps at a new scale overshoot by orders of magnitude before the curvature pairs settle. The
image is kept in [0, 1] after each step, so a step may not be a descent direction where pixels sit on
the bounds; accepting small rises there lets the loss creep up step after step, each step paying several
halvings (QUALITY.md), so by default no rise is accepted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

import tensorflow as tf

ADAM_BETA_1, ADAM_BETA_2, ADAM_EPSILON = 0.9, 0.999, 1e-7  # Keras' defaults

# The factor a step may raise the loss by where each evaluation's loss is itself noisy: tiled steps
# measure it on a tile grid that moves every step.
TILED_TOLERATED_RISE = 1.05
# Halvings of a step before L-BFGS gives up on it and restarts from the point before it. A step that still
# raises the loss at 1/16 of its length points the wrong way (clipped to [0, 1], an early step's direction
# can be an ascent one); in traced default runs none was accepted after more than two halvings (BENCHMARKS.md).
MAX_HALVINGS = 4
# The RMS change of the first step, in the image's [0, 1] units (about 8 of 255 levels): the size of the steps
# L-BFGS takes and keeps early in a scale (BENCHMARKS.md, "Design choices").
FIRST_STEP_RMS = 0.03
# The fields of `LBFGSState` as long as the image: stored with their length open (`LBFGS.build`).
PIXEL_VECTORS = ("s", "y", "previous_x", "previous_gradient")


def adam_update(x: tf.Tensor, m: tf.Tensor, v: tf.Tensor, step: tf.Tensor, gradient: tf.Tensor,
                learning_rate: float | tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """One Adam step (Kingma & Ba 2015, Algorithm 1, in Keras' form): `step` is 1-based; returns the new
    (x, m, v)."""
    step = tf.cast(step, x.dtype)
    m = m + (gradient - m) * (1.0 - ADAM_BETA_1)
    v = v + (tf.square(gradient) - v) * (1.0 - ADAM_BETA_2)
    alpha = learning_rate * tf.sqrt(1.0 - ADAM_BETA_2**step) / (1.0 - ADAM_BETA_1**step)
    return x - alpha * m / (tf.sqrt(v) + ADAM_EPSILON), m, v


class Adam:
    """Adam for one variable, with the `build` / `apply_gradients` / `variables` of `LBFGS`."""

    def __init__(self, learning_rate: float) -> None:
        self.learning_rate = learning_rate

    @property
    def settings(self) -> tuple:
        """The constructor's arguments: with `variables`, all that `with_state` needs."""
        return (self.learning_rate,)

    @classmethod
    def with_state(cls, settings: tuple, variables: list[tf.Variable]) -> Adam:
        """An Adam of `settings` whose state is `variables` (in the order of `variables`)."""
        optimizer = cls(*settings)
        optimizer.m, optimizer.v, optimizer.iterations = variables
        return optimizer

    def build(self, variables: list[tf.Variable]) -> None:
        (variable,) = variables
        # Declared as the variable's shape, which may leave its height and width open (`stylize._apply_step`).
        self.m = tf.Variable(tf.zeros_like(variable), trainable=False, shape=variable.shape)
        self.v = tf.Variable(tf.zeros_like(variable), trainable=False, shape=variable.shape)
        self.iterations = tf.Variable(0, trainable=False)

    @property
    def variables(self) -> list[tf.Variable]:
        """The whole state, for checkpoints."""
        return [self.m, self.v, self.iterations]

    def apply_gradients(self, gradients_and_variables: Iterable[tuple[tf.Tensor, tf.Variable]]) -> None:
        """One step of the one variable, in Keras' form: `[(gradient, variable)]`."""
        ((gradient, variable),) = gradients_and_variables
        self.iterations.assign_add(1)
        x, m, v = adam_update(variable, self.m, self.v, self.iterations, gradient, self.learning_rate)
        variable.assign(x)
        self.m.assign(m)
        self.v.assign(v)


class LBFGS:
    """Minimal L-BFGS with Keras-optimizer-like `build` / `apply_gradients` for one variable.

    `history` pairs are kept; `learning_rate` scales every step; the safeguard accepts a loss up to
    `tolerated_rise` × the one before the step; the first step moves the variable by an RMS of `first_step_rms`.
    """

    def __init__(self, history: int = 10, learning_rate: float = 1.0, tolerated_rise: float = 1.0,
                 first_step_rms: float = FIRST_STEP_RMS) -> None:
        self.history = history
        self.learning_rate = learning_rate
        self.tolerated_rise = tolerated_rise
        self.first_step_rms = first_step_rms

    @property
    def settings(self) -> tuple:
        """The constructor's arguments: with `variables`, all that `with_state` needs."""
        return (self.history, self.learning_rate, self.tolerated_rise, self.first_step_rms)

    @classmethod
    def with_state(cls, settings: tuple, variables: list[tf.Variable]) -> LBFGS:
        """An L-BFGS of `settings` whose state is `variables` (in the order of `variables`)."""
        optimizer = cls(*settings)
        (optimizer.s, optimizer.y, optimizer.sy, optimizer.yy, optimizer.previous_x, optimizer.previous_gradient,
         optimizer.count, optimizer.iterations, optimizer.next_slot, optimizer.first_step_scale) = variables
        return optimizer

    def build(self, variables: list[tf.Variable]) -> None:
        (variable,) = variables
        start = lbfgs_start(tf.reshape(variable, [-1]), self.history)
        # The pixel vectors declare their length open, so one trace of a step serves every image size
        # (`stylize._apply_step`).
        (self.s, self.y, self.sy, self.yy, self.previous_x, self.previous_gradient, self.count, self.iterations,
         self.next_slot, self.first_step_scale) = (
            tf.Variable(value, trainable=False, shape=[*value.shape[:-1], None] if name in PIXEL_VECTORS else None)
            for name, value in start._asdict().items())

    @property
    def variables(self) -> list[tf.Variable]:
        """The whole state, for checkpoints."""
        return [self.s, self.y, self.sy, self.yy, self.previous_x, self.previous_gradient, self.count,
                self.iterations, self.next_slot, self.first_step_scale]

    def apply_gradients(self, gradients_and_variables: Iterable[tuple[tf.Tensor, tf.Variable]]) -> None:
        """One step of the one variable, in Keras' form: `[(gradient, variable)]`; `safeguard` then checks it."""
        ((gradient, variable),) = gradients_and_variables
        moved, state = lbfgs_update(LBFGSState(*self.variables), tf.reshape(variable, [-1]), tf.reshape(gradient, [-1]),
                                    self.learning_rate, self.first_step_rms, self._store_pair)
        for name, state_variable in zip(LBFGSState._fields, self.variables):
            if name not in ("s", "y"):  # written in place by `_store_pair`
                state_variable.assign(getattr(state, name))
        variable.assign(tf.reshape(moved, tf.shape(variable)))

    def _store_pair(self, state: LBFGSState, slot: tf.Tensor, s: tf.Tensor, y: tf.Tensor, stored: tf.Tensor
                    ) -> tuple[tf.Tensor, tf.Tensor]:
        """`lbfgs_update`'s `store`, in place: a step copies no stored pair (a pure update copies the history,
        BENCHMARKS.md "Design choices")."""

        def store() -> None:
            self.s.scatter_nd_update([[slot]], s[None])
            self.y.scatter_nd_update([[slot]], y[None])

        tf.cond(stored, store, lambda: None)
        # Read once: TensorFlow copies a variable on every read once it has been written by a scatter.
        return self.s.read_value(), self.y.read_value()

    def safeguard(self, variable: tf.Variable, loss_before: tf.Tensor, evaluate: Callable[[], tuple]) -> tuple | None:
        """Shorten the step just applied to `variable` until its loss is at most `tolerated_rise` × `loss_before`.

        `evaluate()` returns (loss parts with "total", gradient) at the variable's current value; the
        accepted evaluation is returned so the caller need not compute it again. After `MAX_HALVINGS`, the
        variable goes back to the point before the step, the curvature history is dropped (the next step is
        a first step again) and None is returned. When the step given up on was itself a first step, the
        next first step is shorter than the shortest tried: the same one would fail again at every step.
        """
        before = tf.reshape(self.previous_x, tf.shape(variable))
        try:
            for _ in range(MAX_HALVINGS):
                parts, gradient = evaluate()
                total = parts["total"]
                if tf.reduce_all(tf.math.is_finite(total) & (total <= self.tolerated_rise * loss_before)):
                    return parts, gradient
                variable.assign(before + 0.5 * (variable - before))  # between two points in the box: stays in it
        except KeyboardInterrupt:  # stopped mid-search: keep the last accepted image, not an unchecked one
            variable.assign(before)
            raise
        variable.assign(before)
        restarted = lbfgs_restarted(LBFGSState(*self.variables))
        for state_variable, value in ((self.count, restarted.count), (self.iterations, restarted.iterations),
                                      (self.first_step_scale, restarted.first_step_scale)):
            state_variable.assign(value)
        return None


class LBFGSState(NamedTuple):
    """L-BFGS's state as tensors, in the order of `LBFGS.variables`.

    The (s, y) pairs of flattened points and gradients are a ring of `history` slots: the next one overwrites
    slot `next_slot` (the oldest once `count` = `history`), so a step writes one pair instead of shifting the
    whole history (BENCHMARKS.md, "Design choices"). `sy[i, j]` = sᵢ·yⱼ and `yy[i, j]` = yᵢ·yⱼ by slot: a step
    updates the row and column of the pair it stores instead of computing them all again. `iterations`
    counts the steps since the last (re)start; `first_step_scale` is the first step's length relative to
    `first_step_rms`, cut when a first step is given up on (`lbfgs_restarted`).
    """

    s: tf.Tensor
    y: tf.Tensor
    sy: tf.Tensor
    yy: tf.Tensor
    previous_x: tf.Tensor
    previous_gradient: tf.Tensor
    count: tf.Tensor
    iterations: tf.Tensor
    next_slot: tf.Tensor
    first_step_scale: tf.Tensor


def lbfgs_start(x: tf.Tensor, history: int) -> LBFGSState:
    """The state before the first step from the flat point `x` (its length may be unknown until run time)."""
    pixel_vectors = tf.zeros([history, tf.size(x)], x.dtype)
    return LBFGSState(pixel_vectors, pixel_vectors, tf.zeros([history, history], x.dtype),
                      tf.zeros([history, history], x.dtype), tf.zeros_like(x), tf.zeros_like(x), tf.constant(0),
                      tf.constant(0), tf.constant(0), tf.constant(1.0, x.dtype))


def stored_pair(state: LBFGSState, slot: tf.Tensor, s: tf.Tensor, y: tf.Tensor, stored: tf.Tensor
                ) -> tuple[tf.Tensor, tf.Tensor]:
    """`lbfgs_update`'s default `store`: the pairs with (`s`, `y`) written at `slot` where `stored`, as new tensors."""
    return tf.cond(stored, lambda: (tf.tensor_scatter_nd_update(state.s, [[slot]], s[None]),
                                    tf.tensor_scatter_nd_update(state.y, [[slot]], y[None])),
                   lambda: (tf.convert_to_tensor(state.s), tf.convert_to_tensor(state.y)))


def lbfgs_update(state: LBFGSState, x: tf.Tensor, g: tf.Tensor, learning_rate: float | tf.Tensor,
                 first_step_rms: float = FIRST_STEP_RMS, store: Callable[..., tuple[tf.Tensor, tf.Tensor]] | None = None
                 ) -> tuple[tf.Tensor, LBFGSState]:
    """One L-BFGS step from the flat point `x` with gradient `g` (module docstring): the moved point and
    the new state. The pair from the last step is stored first (`store(state, slot, s, y, stored)` returns
    the pairs after it; None: `stored_pair`), unless it would break positive definiteness."""
    history = state.s.shape[0]
    # Read once (`LBFGS` passes its variables); the pairs are `store`'s to read.
    state = state._replace(**{name: tf.convert_to_tensor(value) for name, value in state._asdict().items()
                              if name not in ("s", "y")})
    s, y = x - state.previous_x, g - state.previous_gradient
    slot = state.next_slot
    stored = (state.iterations > 0) & (tf.tensordot(s, y, 1) > 1e-10)  # no pair before the first step
    pairs_s, pairs_y = (store or stored_pair)(state, slot, s, y, stored)
    # Every inner product with the stored pairs this step needs, in one pass over each.
    s_times = tf.matmul(tf.stack([y, g]), pairs_s, transpose_b=True)  # [2, history]: y·sᵢ, g·sᵢ
    y_times = tf.matmul(tf.stack([s, y, g]), pairs_y, transpose_b=True)  # s·yᵢ, y·yᵢ, g·yᵢ
    row = tf.stack([tf.fill([history], slot), tf.range(history)], axis=1)
    column = tf.reverse(row, axis=[1])
    # A stored pair updates the row and column of its slot instead of all the products being computed again.
    sy = tf.cond(stored, lambda: tf.tensor_scatter_nd_update(
        tf.tensor_scatter_nd_update(state.sy, column, s_times[0]), row, y_times[0]), lambda: state.sy)
    yy = tf.cond(stored, lambda: tf.tensor_scatter_nd_update(
        tf.tensor_scatter_nd_update(state.yy, column, y_times[1]), row, y_times[1]), lambda: state.yy)
    count = tf.where(stored, tf.minimum(state.count + 1, history), state.count)
    next_slot = tf.where(stored, (slot + 1) % history, slot)
    direction = -_inverse_hessian_times(g, pairs_s, pairs_y, sy, yy, s_times[1], y_times[2], count, next_slot)

    def first_step() -> tf.Tensor:  # a pass over the gradient that only a first step needs
        gradient_rms = tf.sqrt(tf.reduce_mean(tf.square(g)))  # zero where nothing pulls: then no first step
        return tf.math.divide_no_nan(first_step_rms, gradient_rms) * learning_rate * state.first_step_scale

    step = tf.cond(state.iterations == 0, first_step, lambda: tf.cast(learning_rate, g.dtype))
    return x + step * direction, LBFGSState(pairs_s, pairs_y, sy, yy, x, g, count, state.iterations + 1, next_slot,
                                            state.first_step_scale)


def lbfgs_restarted(state: LBFGSState) -> LBFGSState:
    """The state after the safeguard gives up on a step: no pairs, so the next step is a first step, and
    shorter than the shortest tried when the one given up on was a first step (the same one would fail again)."""
    scale = tf.where(state.iterations == 1, state.first_step_scale * 0.5**MAX_HALVINGS, state.first_step_scale)
    return state._replace(count=tf.zeros_like(state.count), iterations=tf.zeros_like(state.iterations),
                          first_step_scale=scale)


def _inverse_hessian_times(g: tf.Tensor, pairs_s: tf.Tensor, pairs_y: tf.Tensor, sy: tf.Tensor, yy: tf.Tensor,
                           s_g: tf.Tensor, y_g: tf.Tensor, count: tf.Tensor, next_slot: tf.Tensor) -> tf.Tensor:
    """H·g for the `count` newest of the pairs `pairs_s`, `pairs_y` (a ring whose oldest is at `next_slot`
    once full), from their products `sy`, `yy` and `s_g` = sᵢ·g and `y_g` = yᵢ·g by slot, in the compact
    form (Byrd, Nocedal & Schnabel 1994, eq. 3.1) with H₀ = γI, γ = s·y / y·y of the newest pair:
    H·g = γg + S·(R⁻ᵀ((D + γYᵀY)·u − γYᵀg)) − γY·u, u = R⁻¹Sᵀg, the pairs in order oldest to newest, R the
    upper triangle of SᵀY and D its diagonal. The small products are taken in float64."""
    m = pairs_s.shape[0]
    order = (next_slot + tf.range(m)) % m  # slots, oldest to newest
    used = tf.cast(tf.range(m) >= m - count, tf.float64)  # the newest `count`; the others are stale
    pairwise = used[:, None] * used[None, :]

    def in_order(matrix: tf.Tensor) -> tf.Tensor:  # rows and columns oldest to newest, stale ones zero
        return tf.gather(tf.gather(tf.cast(matrix, tf.float64), order), order, axis=1) * pairwise

    sy, yy = in_order(sy), in_order(yy)
    s_g, y_g = (tf.gather(tf.cast(values, tf.float64), order)[:, None] * used[:, None] for values in (s_g, y_g))
    diagonal = tf.linalg.diag_part(sy)[:, None]
    # Unused pairs get an identity row and column of R, so their u and p are zero.
    r = tf.linalg.band_part(sy, 0, -1) + tf.linalg.diag(1.0 - used)
    gamma = tf.math.divide_no_nan(sy[-1, -1], yy[-1, -1]) + (1.0 - used[-1])  # 1 with no pairs
    u = tf.linalg.triangular_solve(r, s_g, lower=False)
    p = tf.linalg.triangular_solve(r, diagonal * u + gamma * (yy @ u) - gamma * y_g, lower=False, adjoint=True)
    by_slot = tf.math.invert_permutation(order)
    p, u = (tf.cast(tf.gather(values[:, 0], by_slot), g.dtype) for values in (p, u))
    return (tf.cast(gamma, g.dtype) * g + tf.linalg.matvec(pairs_s, p, transpose_a=True)
            - tf.cast(gamma, g.dtype) * tf.linalg.matvec(pairs_y, u, transpose_a=True))


# (loss parts with "total", each `[batch]`; gradient) at an image: what the in-graph loops minimize.
Evaluate = Callable[[tf.Tensor], tuple[dict[str, tf.Tensor], tf.Tensor]]


def adam_minimize(evaluate: Evaluate, start: tf.Tensor, steps: tf.Tensor | int, learning_rate: float | tf.Tensor,
                  part_names: Sequence[str]) -> tuple[tf.Tensor, tf.Tensor, dict[str, tf.Tensor]]:
    """`steps` Adam steps from `start` in one `tf.while_loop` (the state in loop variables, so concurrent
    calls share nothing), each clipped to [0, 1] as `stylize.optimize`'s. Returns the image, the steps done
    (fewer when the loss, gradient or stepped image stopped being finite: the image is then the last finite
    one) and the loss parts `part_names` the last step started from (NaN before any)."""

    def step(done, image, m, v, last, finite):
        parts, gradient = evaluate(image)
        moved, m_moved, v_moved = adam_update(image, m, v, done + 1, gradient, learning_rate)
        # A finite but huge gradient can still overflow Adam's second moment into a NaN image.
        finite = _all_finite(parts["total"], gradient, moved)
        keep = lambda new, old: tf.where(finite, new, old)  # noqa: E731 — a non-finite step changes nothing
        return (done + tf.cast(finite, tf.int32), keep(tf.clip_by_value(moved, 0.0, 1.0), image), keep(m_moved, m),
                keep(v_moved, v), {name: keep(parts[name], last[name]) for name in part_names}, finite)

    zeros = tf.zeros_like(start)
    done, image, _, _, last, _ = tf.while_loop(
        lambda done, image, m, v, last, finite: finite & (done < steps), step,
        (tf.constant(0), start, zeros, zeros, _no_parts(start, part_names), tf.constant(True)),
        maximum_iterations=steps, parallel_iterations=1)
    return image, done, last


def lbfgs_minimize(evaluate: Evaluate, start: tf.Tensor, steps: tf.Tensor | int, history: int,
                   learning_rate: float | tf.Tensor, part_names: Sequence[str], first_step_rms: float = FIRST_STEP_RMS,
                   loss: Callable[[tf.Tensor], dict[str, tf.Tensor]] | None = None
                   ) -> tuple[tf.Tensor, tf.Tensor, dict[str, tf.Tensor]]:
    """`steps` steps of `LBFGS` with its safeguard (no rise tolerated) from `start` in one `tf.while_loop` (the
    state in loop variables, so concurrent calls share nothing): the steps, clipped to [0, 1], and shortened or
    given up on as `stylize.optimize` takes them with an `LBFGS`, each iteration one evaluation (at most
    `MAX_HALVINGS` + 1 a step); `loss`, the loss parts alone, if given, checks the last step, as `optimize`'s.
    Returns what `adam_minimize` returns; a step whose start's loss or gradient, or whose stepped image, is not
    finite ends the loop at that start."""
    shape = tf.shape(start)

    def body(done, pending, halvings, image, loss_before, last, finite, state):
        if loss is None:
            parts, gradient = evaluate(image)
        else:  # once every step is taken, only the loss decides
            parts, gradient = tf.cond(done < steps, lambda: evaluate(image),
                                      lambda: (loss(image), tf.zeros_like(image)))
        total = parts["total"]
        before = tf.reshape(state.previous_x, shape)

        def step():  # from the image: its evaluation is the step's start
            moved, moved_state = lbfgs_update(state, tf.reshape(image, [-1]), tf.reshape(gradient, [-1]),
                                              learning_rate, first_step_rms)
            finite = _all_finite(total, gradient, moved)
            return tf.cond(finite, lambda: (done + 1, tf.constant(True), tf.constant(0),
                                            tf.clip_by_value(tf.reshape(moved, shape), 0.0, 1.0), total,
                                            {name: parts[name] for name in part_names}, finite, moved_state),
                           lambda: (done, pending, halvings, image, loss_before, last, finite, state))

        def shorter():  # between two points in the box: stays in it
            return done, pending, halvings + 1, before + 0.5 * (image - before), loss_before, last, finite, state

        def given_up():  # back to the point before the step, which the next iteration evaluates again
            return done, tf.constant(False), tf.constant(0), before, loss_before, last, finite, lbfgs_restarted(state)

        def ended():
            return done, tf.constant(False), halvings, image, loss_before, last, finite, state

        accepted = ~pending | tf.reduce_all(tf.math.is_finite(total) & (total <= loss_before))
        branch = tf.where(accepted, tf.where(done < steps, 0, 3), tf.where(halvings + 1 < MAX_HALVINGS, 1, 2))
        return tf.switch_case(branch, [step, shorter, given_up, ended])

    nothing = _no_parts(start, part_names)
    # One iteration at a time (`parallel_iterations=1`, here and in `adam_minimize`): with TensorFlow's
    # default of 10 in flight, a served request held several iterations' images and states at once
    # (BENCHMARKS.md, "Design choices").
    done, _, _, image, _, last, _, _ = tf.while_loop(
        lambda done, pending, halvings, image, loss_before, last, finite, state: finite & ((done < steps) | pending),
        body, (tf.constant(0), tf.constant(False), tf.constant(0), start, nothing["total"], nothing,
               tf.constant(True), lbfgs_start(tf.reshape(start, [-1]), history)),
        maximum_iterations=steps * (MAX_HALVINGS + 1), parallel_iterations=1)
    return image, done, last


def _no_parts(images: tf.Tensor, part_names: Sequence[str]) -> dict[str, tf.Tensor]:
    return {name: tf.fill(tf.shape(images)[:1], float("nan")) for name in part_names}


def _all_finite(*values: tf.Tensor) -> tf.Tensor:
    return tf.reduce_all([tf.reduce_all(tf.math.is_finite(value)) for value in values])
