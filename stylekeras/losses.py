"""The losses of Gatys, Ecker & Bethge (CVPR 2016), each a small pure function of tensors.

Feature maps are `[batch, height, width, channels]`; N is the number of channels and M = height × width
the number of positions, as in the paper. One departure: a style image's Gram matrix can be re-weighted so
that its outermost ring of positions counts as much as the result's does (`gram_for_ring_share`). Every loss
has one value per image of the batch (`[batch]`), so several photos can be stylized in one pass and still
each get their own loss; the gradient of their sum moves each image by its own loss alone.
"""

from __future__ import annotations

from collections.abc import Mapping

import tensorflow as tf


def content_loss(features: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """L_content = 1/2 Σ (F − P)², F the generated image's features and P the content image's (eq. 1)."""
    difference = tf.cast(features, tf.float32) - tf.cast(target, tf.float32)
    return 0.5 * tf.reduce_sum(tf.square(difference), axis=[1, 2, 3])


def gram_matrix(features: tf.Tensor, mask: tf.Tensor | None = None) -> tf.Tensor:
    """G_ij = Σ_k F_ik F_jk over the M positions k: the `[batch, N, N]` channel correlations (eq. 3).

    With a `[batch, height, width, 1]` mask, each position's term is weighted by the mask. The result is
    float32 whatever the features' dtype (bfloat16 with precision "mixed").
    """
    shape = tf.shape(features)
    flat_shape = [shape[0], shape[1] * shape[2], shape[3]]
    if mask is None:
        return _self_gram(tf.reshape(features, flat_shape))
    features = tf.cast(features, tf.float32)
    return tf.matmul(tf.reshape(features * mask, flat_shape), tf.reshape(features, flat_shape), transpose_a=True)


@tf.custom_gradient
def _self_gram(flat: tf.Tensor) -> tf.Tensor:
    # FᵀF as one batched matmul over the flattened positions, with its gradient F(U + Uᵀ) as one more.
    # Autodiff takes two M×N products and adds them, holding extra copies of F (1 GiB each at
    # block1_conv1 of a 2048 px image): this lowers peak memory and time (BENCHMARKS.md, "Design choices").
    # With bfloat16 features (precision "mixed") the product stays float32, since a bfloat16 Gram made
    # L-BFGS diverge; the gradient is taken in bfloat16, like the convolutions it feeds.
    def gradient(upstream: tf.Tensor) -> tf.Tensor:
        return tf.matmul(flat, tf.cast(upstream + tf.linalg.matrix_transpose(upstream), flat.dtype))

    exact = tf.cast(flat, tf.float32)
    return tf.matmul(exact, exact, transpose_a=True), gradient


def normalized_gram(features: tf.Tensor, mask: tf.Tensor | None = None) -> tf.Tensor:
    """G / M: the Gram matrix averaged over positions, comparable between images of different sizes.

    With a `[batch, height, width, 1]` mask in [0, 1], positions are weighted by it and the average is
    over the mask's area: the style statistics of that region only (spatial control, Gatys et al. 2017).
    """
    if mask is None:
        positions = tf.cast(tf.shape(features)[1] * tf.shape(features)[2], tf.float32)
        return gram_matrix(features) / positions
    area = tf.reduce_sum(tf.cast(mask, tf.float32), axis=[1, 2, 3])[:, None, None]
    return gram_matrix(features, mask) / (area + 1e-8)


def ring_share(height: int | tf.Tensor, width: int | tf.Tensor) -> tf.Tensor:
    """The share of a `height`×`width` feature map's positions on its outermost ring (its first and last
    rows and columns): 1 for a map under 3 positions across, which has no interior."""
    height, width = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
    return 1.0 - tf.maximum(height - 2.0, 0.0) * tf.maximum(width - 2.0, 0.0) / (height * width)


def ring_mask(height: int | tf.Tensor, width: int | tf.Tensor) -> tf.Tensor:
    """`[1, height, width, 1]`: 1 on a map's outermost ring of positions, 0 inside."""
    rows, columns = tf.range(height)[:, None], tf.range(width)[None, :]
    ring = (rows == 0) | (rows == height - 1) | (columns == 0) | (columns == width - 1)
    return tf.cast(ring, tf.float32)[None, :, :, None]


def ring_gram(features: tf.Tensor) -> tf.Tensor:
    """The `normalized_gram` of `[batch, height, width, channels]` `features` over their outermost ring
    (`ring_mask`; every position of a map under 3 positions across), from the ring's positions alone: the
    mask's product over every position would cost a whole Gram matrix more per style image and scale."""
    shape = tf.shape(features)
    on_ring = tf.reshape(ring_mask(shape[1], shape[2]), [-1]) > 0
    positions = tf.boolean_mask(tf.reshape(features, [shape[0], -1, shape[3]]), on_ring, axis=1)
    return _self_gram(positions) / tf.cast(tf.shape(positions)[1], tf.float32)


def gram_for_ring_share(gram: tf.Tensor, ring_gram: tf.Tensor, own_share: float | tf.Tensor,
                        share: float | tf.Tensor) -> tf.Tensor:
    """A style image's normalized Gram matrix re-weighted so that its outermost ring makes up `share` of the
    average instead of its own `own_share` (`ring_share`): G + (s′ − s) / (1 − s) · (R − G), with R the
    ring's `ring_gram`; G itself for a map without an interior.

    The ring's positions see the network's zero padding, and the ring is a larger share of a small image's
    positions. Averaged evenly, a style image smaller than the result asks for more of the padding's
    signature than the result's own ring gives, and the result paints it in as a frame of dots along its
    edges; with `share` the result's own ring share, the style asks for exactly its ring's amount.
    """
    own_share, share = tf.cast(own_share, tf.float32), tf.cast(share, tf.float32)
    interior = 1.0 - own_share
    factor = tf.where(interior > 0, (share - own_share) / tf.maximum(interior, 1e-8), 0.0)
    return gram + factor * (ring_gram - gram)


def layer_style_loss(features: tf.Tensor, target_gram: tf.Tensor, mask: tf.Tensor | None = None) -> tf.Tensor:
    """E = 1/(4 N² M²) Σ (G − A)² (eq. 4), written as 1/(4 N²) Σ (G/M − A/M_A)².

    `target_gram` is the style image's `normalized_gram` (A / M_A). When both images have the same size
    this is exactly the paper's E; when they differ, the per-position normalisation keeps E meaningful.
    A `mask` restricts the generated image's statistics to a region (see `normalized_gram`).
    """
    return gram_style_loss(normalized_gram(features, mask), target_gram)


def gram_style_loss(gram: tf.Tensor, target_gram: tf.Tensor) -> tf.Tensor:
    """E = 1/(4 N²) Σ (G − A)² for normalized Gram matrices G and A of N channels (a target of batch 1
    serves every image)."""
    channels = tf.cast(tf.shape(gram)[-1], gram.dtype)
    return tf.reduce_sum(tf.square(gram - target_gram), axis=[1, 2]) / (4.0 * channels**2)


def style_loss(
    features: Mapping[str, tf.Tensor],
    target_grams: Mapping[str, tf.Tensor],
    layer_weights: Mapping[str, float],
    masks: Mapping[str, tf.Tensor] | None = None,
) -> tf.Tensor:
    """L_style = Σ_l w_l E_l over the style layers (eq. 5), each E_l optionally restricted to a mask."""
    return tf.add_n(list(weighted_layer_style_losses(features, target_grams, layer_weights, masks).values()))


def weighted_layer_style_losses(
    features: Mapping[str, tf.Tensor],
    target_grams: Mapping[str, tf.Tensor],
    layer_weights: Mapping[str, float],
    masks: Mapping[str, tf.Tensor] | None = None,
) -> dict[str, tf.Tensor]:
    """The terms w_l E_l of L_style, by layer name."""
    return {
        name: layer_weights[name] * layer_style_loss(features[name], target_grams[name], masks[name] if masks else None)
        for name in target_grams
    }


def total_variation_loss(images: tf.Tensor) -> tf.Tensor:
    """Σ (x_{i+1,j} − x_ij)² + (x_{i,j+1} − x_ij)²: smoothness prior against high-frequency noise.

    Not in Gatys et al. 2016; taken from Mahendran & Vedaldi 2015 (β = 2) as in jcjohnson/neural-style.
    """
    return _total_variation(tf.convert_to_tensor(images))


@tf.custom_gradient
def _total_variation(images: tf.Tensor) -> tf.Tensor:
    # Its gradient written out, 2 (d_{i−1} − d_i) per axis for the differences d (zero beyond the edges):
    # autodiff's four strided-slice gradients take several times longer (BENCHMARKS.md, "Design choices").
    down = images[:, 1:, :, :] - images[:, :-1, :, :]
    right = images[:, :, 1:, :] - images[:, :, :-1, :]

    def gradient(upstream: tf.Tensor) -> tf.Tensor:
        def previous_less_own(difference: tf.Tensor, axis: int) -> tf.Tensor:  # d_{i−1} − d_i along `axis`
            before, after = [[0, 0]] * 4, [[0, 0]] * 4
            before[axis], after[axis] = [1, 0], [0, 1]
            return tf.pad(difference, before) - tf.pad(difference, after)

        difference = previous_less_own(down, 1) + previous_less_own(right, 2)
        return 2.0 * upstream[:, None, None, None] * difference

    return tf.reduce_sum(tf.square(down), axis=[1, 2, 3]) + tf.reduce_sum(tf.square(right), axis=[1, 2, 3]), gradient


def temporal_loss(images: tf.Tensor, warped: tf.Tensor, consistency: tf.Tensor) -> tf.Tensor:
    """1/D Σ_k c_k (x_k − ω_k)²: the frame's distance to the previous stylized frame warped onto it, where
    the flow is reliable (c = 1), D the number of values (Ruder, Dosovitskiy & Brox 2016, eq. 5)."""
    return tf.reduce_mean(consistency * tf.square(images - warped), axis=[1, 2, 3])


def total_loss(
    content: tf.Tensor, style: tf.Tensor, variation: tf.Tensor, content_weight: float, style_weight: float, tv_weight: float
) -> tf.Tensor:
    """L_total = α L_content + β L_style + γ L_tv (eq. 7, plus the smoothness term)."""
    return content_weight * content + style_weight * style + tv_weight * variation
