"""The optimizers that move the image: Adam (Kingma & Ba 2015) and an in-graph L-BFGS.

`adam_update` is Adam's step as a pure function of tensors, the one implementation behind both the
library's `Adam` (state in variables, one step per call) and the served stylizer (state carried through
a `tf.while_loop`, `stylekeras.serving`). It is Keras' Adam, with its defaults.

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

from collections.abc import Callable

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

    def apply_gradients(self, gradients_and_variables) -> None:
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
        size = int(tf.size(variable))
        zeros = lambda *shape: tf.Variable(tf.zeros(shape, variable.dtype), trainable=False)  # noqa: E731
        # Pixel vectors (after `leading` dimensions) declare their length open, so one trace of a step serves
        # every image size (`stylize._apply_step`).
        pixel_vectors = lambda *leading: tf.Variable(  # noqa: E731
            tf.zeros([*leading, size], variable.dtype), trainable=False, shape=[*leading, None])
        self.s, self.y = pixel_vectors(self.history), pixel_vectors(self.history)
        # The pairs' inner products by slot, sy[i, j] = sᵢ·yⱼ and yy[i, j] = yᵢ·yⱼ: a step updates the row and
        # column of the pair it stores instead of computing them all again.
        self.sy, self.yy = zeros(self.history, self.history), zeros(self.history, self.history)
        self.previous_x, self.previous_gradient = pixel_vectors(), pixel_vectors()
        self.count = tf.Variable(0, trainable=False)
        self.iterations = tf.Variable(0, trainable=False)
        # The first step's length relative to `first_step_rms`: cut when a first step is given up on, so the
        # next one does not repeat it from the same point (`safeguard`).
        self.first_step_scale = tf.Variable(1.0, trainable=False)
        # The pairs are a ring: the next one overwrites slot `next_slot` (the oldest once `count` = `history`),
        # so a step writes one pair instead of copying the whole history (BENCHMARKS.md, "Design choices").
        self.next_slot = tf.Variable(0, trainable=False)

    @property
    def variables(self) -> list[tf.Variable]:
        """The whole state, for checkpoints."""
        return [self.s, self.y, self.sy, self.yy, self.previous_x, self.previous_gradient, self.count,
                self.iterations, self.next_slot, self.first_step_scale]

    def apply_gradients(self, gradients_and_variables) -> None:
        ((gradient, variable),) = gradients_and_variables
        x, g = tf.reshape(variable, [-1]), tf.reshape(gradient, [-1])
        s, y = x - self.previous_x, g - self.previous_gradient
        slot = self.next_slot.read_value()
        # No pair before the first step; none that would break positive definiteness.
        stored = (self.iterations > 0) & (tf.tensordot(s, y, 1) > 1e-10)

        def store() -> None:
            self.s.scatter_nd_update([[slot]], s[None])
            self.y.scatter_nd_update([[slot]], y[None])
            self.next_slot.assign((slot + 1) % self.history)
            self.count.assign(tf.minimum(self.count + 1, self.history))

        # tf.cond rather than `if`: the step runs inside a tf.function traced without autograph (`optimize`).
        tf.cond(stored, store, lambda: None)
        # Read once: TensorFlow copies a variable on every read once it has been written by a scatter.
        pairs_s, pairs_y = self.s.read_value(), self.y.read_value()
        # Every inner product with the stored pairs this step needs, in one pass over each.
        s_times = tf.matmul(tf.stack([y, g]), pairs_s, transpose_b=True)  # [2, history]: y·sᵢ, g·sᵢ
        y_times = tf.matmul(tf.stack([s, y, g]), pairs_y, transpose_b=True)  # s·yᵢ, y·yᵢ, g·yᵢ

        def store_products() -> None:
            row = tf.stack([tf.fill([self.history], slot), tf.range(self.history)], axis=1)
            column = tf.reverse(row, axis=[1])
            self.sy.scatter_nd_update(column, s_times[0])
            self.sy.scatter_nd_update(row, y_times[0])
            self.yy.scatter_nd_update(column, y_times[1])
            self.yy.scatter_nd_update(row, y_times[1])

        tf.cond(stored, store_products, lambda: None)
        direction = -self._inverse_hessian_times(g, pairs_s, pairs_y, s_times[1], y_times[2])

        def first_step() -> tf.Tensor:  # a pass over the gradient that only a first step needs
            gradient_rms = tf.sqrt(tf.reduce_mean(tf.square(g)))  # zero where nothing pulls: then no first step
            return tf.math.divide_no_nan(self.first_step_rms, gradient_rms) * self.learning_rate * self.first_step_scale

        step = tf.cond(self.iterations == 0, first_step, lambda: tf.constant(self.learning_rate, g.dtype))
        self.previous_x.assign(x)
        self.previous_gradient.assign(g)
        self.iterations.assign_add(1)
        variable.assign_add(tf.reshape(step * direction, tf.shape(variable)))

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
        if self.iterations == 1:
            self.first_step_scale.assign(self.first_step_scale * 0.5**MAX_HALVINGS)
        self.count.assign(0)
        self.iterations.assign(0)
        return None

    def _inverse_hessian_times(self, g: tf.Tensor, pairs_s: tf.Tensor, pairs_y: tf.Tensor, s_g: tf.Tensor,
                               y_g: tf.Tensor) -> tf.Tensor:
        """H·g for the `count` newest of the pairs `pairs_s`, `pairs_y` (the stores' values), from `s_g` = sᵢ·g
        and `y_g` = yᵢ·g by slot, in the compact form (Byrd, Nocedal & Schnabel 1994, eq. 3.1) with H₀ = γI,
        γ = s·y / y·y of the newest pair: H·g = γg + S·(R⁻ᵀ((D + γYᵀY)·u − γYᵀg)) − γY·u, u = R⁻¹Sᵀg, the
        pairs in order oldest to newest, R the upper triangle of SᵀY and D its diagonal. The small products
        are taken in float64."""
        m = self.history
        order = (self.next_slot + tf.range(m)) % m  # slots, oldest to newest
        used = tf.cast(tf.range(m) >= m - self.count, tf.float64)  # the newest `count`; the others are stale
        pairwise = used[:, None] * used[None, :]

        def in_order(matrix: tf.Variable) -> tf.Tensor:  # rows and columns oldest to newest, stale ones zero
            return tf.gather(tf.gather(tf.cast(matrix, tf.float64), order), order, axis=1) * pairwise

        sy, yy = in_order(self.sy), in_order(self.yy)
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
