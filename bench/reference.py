"""The reference loop users copy: TensorFlow's "Neural style transfer" tutorial, re-implemented as the
benchmark's baseline (same backbone and weights as ours, so only the loop differs).

Adam(lr 0.02, β1 0.99, ε 0.1); Gram by einsum divided by the number of locations; style weight 1e-2 and
content weight 1e4 on mean squared errors; content block5_conv2, style block1..5_conv1; one tf.function
call per step from a Python loop. Given an `objective`, the same loop minimises that function instead
(the benchmark's time to quality runs both loops on one objective).
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import tensorflow as tf

from stylekeras.features import build_feature_model
from stylekeras.weights import VGGWeights

CONTENT_LAYERS = ["block5_conv2"]
STYLE_LAYERS = ["block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1"]


def gram_matrix(features: tf.Tensor) -> tf.Tensor:
    result = tf.linalg.einsum("bijc,bijd->bcd", features, features)
    shape = tf.shape(features)
    return result / tf.cast(shape[1] * shape[2], tf.float32)


class ReferenceLoop:
    def __init__(self, weights: VGGWeights, content: tf.Tensor, style: tf.Tensor,
                 objective: Callable[[tf.Tensor], tf.Tensor] | None = None) -> None:
        self.objective = objective or self.loss
        self.extractor = build_feature_model(weights, STYLE_LAYERS + CONTENT_LAYERS)
        style_outputs = self.extractor(style[None])
        self.style_targets = {name: gram_matrix(style_outputs[name]) for name in STYLE_LAYERS}
        self.content_targets = {name: self.extractor(content[None])[name] for name in CONTENT_LAYERS}
        self.image = tf.Variable(content[None])
        self.optimizer = keras.optimizers.Adam(learning_rate=0.02, beta_1=0.99, epsilon=1e-1)

    def loss(self, image: tf.Tensor) -> tf.Tensor:
        outputs = self.extractor(image)
        style = tf.add_n([tf.reduce_mean((gram_matrix(outputs[name]) - self.style_targets[name]) ** 2)
                          for name in STYLE_LAYERS]) * 1e-2 / len(STYLE_LAYERS)
        content = tf.add_n([tf.reduce_mean((outputs[name] - self.content_targets[name]) ** 2)
                            for name in CONTENT_LAYERS]) * 1e4 / len(CONTENT_LAYERS)
        return style + content

    @tf.function
    def step(self) -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = self.objective(self.image)
        gradient = tape.gradient(loss, self.image)
        self.optimizer.apply_gradients([(gradient, self.image)])
        self.image.assign(tf.clip_by_value(self.image, 0.0, 1.0))
        return loss
