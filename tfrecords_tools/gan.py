"""GAN augmentation: `python -m tfrecords_tools.gan DIR --classes lesion --count N [--steps S] [--size PX]`.

Trains a small conditional DCGAN (Keras; the class one-hot joins the latent vector in the generator and
is broadcast as extra channels in the discriminator) on the **training split only** of a converted
single-label folder, at `size` px, then writes `count` generated images for each of `classes` as
flagged training records in `train-gan-NNNNN.tfrecord` shards (`tfrecords_tools.generated`): never in
validation, test or k-fold validation folds, and out of the manifest's μ/σ, as SMOTE does.

Quality, offline: a classifier two-sample test (Lopez-Paz & Oquab, 2017). A logistic regression on the
pixels is trained to tell held-out real training images from generated ones of the same classes;
its 5-fold cross-validated accuracy (0.5: indistinguishable to it, 1.0: trivially told apart) and AUC
go into `manifest["gan"]["c2st"]`. A grid of samples per class, each above real training images of that
class, is written to `DIR/gan_samples.png`.
Running it twice on one folder is refused.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence

import numpy as np

from tfrecords_tools.generated import append_generated, training_pixels
from tfxmed.errors import Refusal
from tfxmed.storage import atomic_path, load_manifest

__all__ = ["add_gan", "build_generator", "build_discriminator", "two_sample_test", "main"]

LATENT = 64
SAMPLES_NAME = "gan_samples.png"


def build_generator(size: int, channels: int, classes: int, latent: int = LATENT):
    """[z, one-hot] → an image in [−1, 1] at `size` px (4 px doubled by transposed convolutions)."""
    import keras
    from keras import layers

    doublings = int(math.log2(size // 4))
    if size < 8 or 4 * 2 ** doublings != size:
        raise ValueError(f"GAN size must be 4 · 2^k >= 8 px (8, 16, 32, 64, ...), got {size}")
    z, label = keras.Input((latent,), name="z"), keras.Input((classes,), name="label")
    width = 32 * 2 ** doublings
    x = layers.Dense(4 * 4 * width, use_bias=False)(layers.Concatenate()([z, label]))
    x = layers.LeakyReLU(0.2)(layers.BatchNormalization()(x))
    x = layers.Reshape((4, 4, width))(x)
    for _ in range(doublings):
        width //= 2
        x = layers.Conv2DTranspose(width, 4, strides=2, padding="same", use_bias=False)(x)
        x = layers.LeakyReLU(0.2)(layers.BatchNormalization()(x))
    image = layers.Conv2D(channels, 3, padding="same", activation="tanh")(x)
    return keras.Model([z, label], image, name="generator")


def build_discriminator(size: int, channels: int, classes: int):
    """[image, one-hot] → a real/generated logit; the one-hot is broadcast as `classes` extra channels."""
    import keras
    from keras import layers

    image, label = keras.Input((size, size, channels), name="image"), keras.Input((classes,), name="label")
    maps = layers.UpSampling2D(size)(layers.Reshape((1, 1, classes))(label))
    x = layers.Concatenate()([image, maps])
    for width in (32, 64, 128):
        x = layers.LeakyReLU(0.2)(layers.Conv2D(width, 4, strides=2, padding="same")(x))
    logit = layers.Dense(1)(layers.Dropout(0.3)(layers.Flatten()(x)))
    return keras.Model([image, label], logit, name="discriminator")


def train_gan(images: np.ndarray, labels: np.ndarray, classes: int, steps: int, batch: int = 64, seed: int = 42):
    """Trains the conditional GAN on `images` [N, H, W, C] in [−1, 1]; returns the generator."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    size, channels = images.shape[1], images.shape[3]
    generator, discriminator = build_generator(size, channels, classes), build_discriminator(size, channels, classes)
    g_optimizer, d_optimizer = keras.optimizers.Adam(2e-4, beta_1=0.5), keras.optimizers.Adam(2e-4, beta_1=0.5)
    bce = keras.losses.BinaryCrossentropy(from_logits=True)
    data = tf.data.Dataset.from_tensor_slices((images.astype("float32"), np.eye(classes, dtype="float32")[labels]))
    data = data.shuffle(len(images), seed=seed).repeat().batch(batch, drop_remainder=True).take(steps)

    @tf.function
    def step(real, onehot):
        z = tf.random.normal((tf.shape(real)[0], LATENT))
        with tf.GradientTape() as d_tape, tf.GradientTape() as g_tape:
            fake = generator([z, onehot], training=True)
            real_logit = discriminator([real, onehot], training=True)
            fake_logit = discriminator([fake, onehot], training=True)
            d_loss = bce(0.9 * tf.ones_like(real_logit), real_logit) + bce(tf.zeros_like(fake_logit), fake_logit)
            g_loss = bce(tf.ones_like(fake_logit), fake_logit)  # non-saturating
        d_optimizer.apply_gradients(zip(d_tape.gradient(d_loss, discriminator.trainable_variables),
                                        discriminator.trainable_variables))
        g_optimizer.apply_gradients(zip(g_tape.gradient(g_loss, generator.trainable_variables),
                                        generator.trainable_variables))
        return d_loss, g_loss

    for real, onehot in data:
        step(real, onehot)
    return generator


def generate(generator, labels: np.ndarray, classes: int, seed: int = 0) -> np.ndarray:
    """uint8 images [N, H, W, C] for class indices `labels`."""
    z = np.random.default_rng(seed).normal(size=(len(labels), LATENT)).astype("float32")
    fake = generator.predict([z, np.eye(classes, dtype="float32")[labels]], batch_size=256, verbose=0)
    return np.clip(np.round((fake + 1.0) * 127.5), 0, 255).astype(np.uint8)


def two_sample_test(real: np.ndarray, fake: np.ndarray, seed: int = 0) -> dict:
    """How well a logistic regression on pixels tells `real` from `fake` (flattened), 5-fold CV."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    features = np.concatenate([real, fake]).reshape(len(real) + len(fake), -1) / 255.0
    target = np.r_[np.zeros(len(real)), np.ones(len(fake))]
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    scores = cross_val_predict(LogisticRegression(C=0.1, max_iter=2000), features, target, cv=folds,
                               method="predict_proba")[:, 1]
    return {"classifier": "logistic regression on pixels, 5-fold CV", "real": int(len(real)),
            "generated": int(len(fake)), "accuracy": float(np.mean((scores > 0.5) == target)),
            "auc": float(roc_auc_score(target, scores))}


def _sample_grid(path: str, samples: dict[str, np.ndarray]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = max(len(images) for images in samples.values())
    figure, axes = plt.subplots(len(samples), columns, figsize=(columns, len(samples) + 0.3), squeeze=False)
    for row, (name, images) in enumerate(samples.items()):
        for column, axis in enumerate(axes[row]):
            axis.axis("off")
            if column < len(images):
                axis.imshow(images[column][..., 0] if images.shape[-1] == 1 else images[column], cmap="gray",
                            vmin=0, vmax=255)
        axes[row][0].set_title(name, loc="left", fontsize=8)
    with atomic_path(path, ".png") as temporary:
        figure.savefig(temporary, dpi=100, bbox_inches="tight")
    plt.close(figure)


def add_gan(data_dir: str, classes: Sequence[str], count: int, steps: int = 2000, size: int = 32, batch: int = 64,
            seed: int = 42) -> dict:
    """Trains the conditional GAN on `data_dir`'s training split and adds `count` images per class in `classes`."""
    manifest = load_manifest(data_dir)
    names = manifest["class_names"]
    if manifest["multi_label"]:
        raise Refusal(f"{data_dir}: the conditional GAN needs single-label classes; this dataset is multi-label")
    if manifest.get("gan"):
        raise Refusal(f"{data_dir}: GAN samples were already added ({manifest['gan']['added']}); convert again first")
    unknown = [name for name in classes if name not in names]
    if unknown or not classes:
        raise Refusal(f"--classes {list(classes)}: expected names from the manifest's classes {names}")
    if count < 1 or steps < 1:
        raise Refusal(f"--count and --steps must be >= 1, got {count} and {steps}")
    pixels, labels = training_pixels(data_dir, manifest, size)
    channels = manifest["channels"]
    if len(pixels) < batch:
        raise Refusal(f"{data_dir}: {len(pixels)} real training images, fewer than one batch of {batch}")
    images = pixels.reshape(-1, size, size, channels) / 127.5 - 1.0
    generator = train_gan(images, labels, len(names), steps, batch, seed)
    wanted = np.repeat([names.index(name) for name in classes], count)
    generated = generate(generator, wanted, len(names), seed)
    rng = np.random.default_rng(seed)
    candidates = np.flatnonzero(np.isin(labels, wanted))  # real training images of the generated classes
    held_out = rng.choice(candidates, min(len(candidates), len(wanted), 2000), replace=False)
    compared = rng.choice(len(generated), len(held_out), replace=False)
    quality = two_sample_test(pixels[held_out].reshape(-1, size, size, channels), generated[compared], seed)
    rows = {}
    for name in classes:  # generated samples above real training images of the same class
        rows[f"generated: {name}"] = generated[wanted == names.index(name)][:8]
        real = np.flatnonzero(labels == names.index(name))[:8]
        real_images = np.clip(np.round(pixels[real]), 0, 255).astype(np.uint8)
        rows[f"real: {name}"] = real_images.reshape(-1, size, size, channels)
    _sample_grid(os.path.join(data_dir, SAMPLES_NAME), rows)
    entry = {"size": size, "steps": steps, "batch": batch, "latent": LATENT, "seed": seed, "classes": list(classes),
             "trained_on": f"train split only ({len(pixels)} real images)", "c2st": quality, "samples": SAMPLES_NAME}
    return append_generated(data_dir, manifest, "gan", generated, wanted, entry)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tfrecords_tools.gan", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dir", help="a converted single-label folder (its training split trains the GAN)")
    parser.add_argument("--classes", nargs="+", required=True, help="class names to generate (the manifest's)")
    parser.add_argument("--count", type=int, required=True, help="images generated per class")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--size", type=int, default=32, help="px (8, 16, 32, 64, ...); the pipeline resizes")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    try:
        entry = add_gan(args.dir, args.classes, args.count, args.steps, args.size, args.batch, args.seed)
    except (Refusal, FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(entry))
    return 0


if __name__ == "__main__":
    sys.exit(main())
