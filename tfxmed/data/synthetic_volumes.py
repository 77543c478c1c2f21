"""The embedded synthetic chest-CT benchmark (volumes), with a ground-truth lesion mask per volume.

Each int16 volume [D, H, W] (axial slices D, in Hounsfield units) shows air around a torso (soft
tissue ≈ 40 HU, an elliptic cylinder along D), two lungs (≈ −850 HU, with faint parenchymal texture),
a heart between them anteriorly and a spine posteriorly (bone ≈ 700 HU), thin vessels in the lungs
(small bright blobs in every volume, positive or not), and Gaussian noise; anatomy is jittered per
volume. Positives carry 1–3 nodules strictly inside the lungs: soft-tissue ellipsoids (≈ 0–60 HU) of
2.5–5 voxel radii; the mask is where a nodule exceeds half its contrast, intersected with the lungs.

As in the 2-D benchmark (`tfxmed.data.synthetic`), `confounder_strength` ties a bright corner cube to the
label in the "train" split only, so a model or an explanation that uses the spurious cue shows. The
same (spec, split) gives byte-identical output. NumPy only.
"""

from __future__ import annotations

import dataclasses
import zlib

import numpy as np

__all__ = ["VolumeSpec", "VolumeBatch", "generate_volumes", "marker_box", "SPACING", "WINDOW"]

SPACING = (2.0, 1.5, 1.5)  # nominal mm between slices, rows, columns
WINDOW = (-1000.0, 400.0)  # HU: the lung-to-soft-tissue window the benchmark is read in


@dataclasses.dataclass(frozen=True)
class VolumeSpec:
    """What to generate: `size`³ voxels; `difficulty` 0 = large, high-contrast nodules and little noise."""

    size: int = 32
    num_examples: int = 200
    positive_fraction: float = 0.5
    difficulty: float = 0.5
    confounder_strength: float = 0.0
    seed: int = 42

    def validate(self) -> None:
        checks = {"size": isinstance(self.size, int) and self.size >= 16, "num_examples": self.num_examples >= 1,
                  "positive_fraction": 0.0 <= self.positive_fraction <= 1.0,
                  "difficulty": 0.0 <= self.difficulty <= 1.0,
                  "confounder_strength": 0.0 <= self.confounder_strength <= 1.0}
        allowed = {"size": "an integer >= 16", "num_examples": ">= 1"}
        for name, valid in checks.items():
            if not valid:
                raise ValueError(f"VolumeSpec.{name} must be {allowed.get(name, 'in [0, 1]')}, "
                                 f"got {getattr(self, name)!r}")


@dataclasses.dataclass
class VolumeBatch:
    volumes: np.ndarray  # int16 [N, S, S, S], HU
    masks: np.ndarray  # uint8 [N, S, S, S], 0 or 255
    labels: np.ndarray  # int64 [N] in {0, 1}
    patient_ids: list[str]  # "SYNV-<split>-000123": synthetic, not real people
    markers: np.ndarray | None = None  # uint8 [N, S, S, S], 255 on the corner cube; None without a confounder


def marker_box(size: int) -> tuple[slice, slice, slice]:
    """The (slices, rows, columns) of the corner cube in a volume of `size`³ voxels."""
    side, offset = max(2, round(size / 10)), 1
    return (slice(offset, offset + side),) * 3


def _ellipsoid(grid, centre, radii) -> np.ndarray:
    return sum(((axis - c) / r) ** 2 for axis, c, r in zip(grid, centre, radii))


def _volume(rng: np.random.Generator, size: int, positive: bool, difficulty: float, marker: bool):
    grid = np.meshgrid(*(np.arange(size, dtype=np.float32),) * 3, indexing="ij")  # d, y (anterior→posterior), x
    centre = size / 2 + rng.normal(0, size * 0.015, 3)
    volume = np.full((size,) * 3, -1000.0, np.float32)
    body = _ellipsoid(grid[1:], centre[1:], (size * rng.uniform(0.36, 0.42), size * rng.uniform(0.44, 0.48))) <= 1
    body &= (grid[0] > size * 0.04) & (grid[0] < size * 0.96)
    volume[body] = 40.0
    lungs = np.zeros_like(body)
    for side in (-1, 1):
        lung_centre = (centre[0], centre[1] - size * 0.02, centre[2] + side * size * rng.uniform(0.19, 0.23))
        radii = (size * rng.uniform(0.36, 0.42), size * rng.uniform(0.25, 0.3), size * rng.uniform(0.14, 0.17))
        lungs |= _ellipsoid(grid, lung_centre, radii) <= 1
    lungs &= body
    texture = rng.normal(0, 25, (size,) * 3).astype(np.float32)
    volume[lungs] = -850.0 + texture[lungs]
    heart = _ellipsoid(grid, (centre[0] + size * 0.08, centre[1] - size * 0.15, centre[2]),
                       (size * 0.2, size * 0.13, size * 0.12)) <= 1
    volume[heart & body] = 40.0
    spine = _ellipsoid(grid[1:], (centre[1] + size * 0.3, centre[2]), (size * 0.07, size * 0.07)) <= 1
    volume[spine & body] = 700.0
    inside = np.argwhere(lungs)
    for _ in range(int(rng.integers(4, 9))):  # vessels: small, in every volume
        point = inside[rng.integers(len(inside))]
        vessel = _ellipsoid(grid, point, rng.uniform(0.8, 1.4, 3)) <= 1
        volume[vessel & lungs] = rng.uniform(-300, 0)
    mask = np.zeros_like(lungs)
    if positive:
        scale = 1.0 - 0.45 * difficulty
        for _ in range(int(rng.integers(1, 4))):
            point = inside[rng.integers(len(inside))]
            radii = rng.uniform(2.5, 5.0, 3) * scale * size / 32
            distance = _ellipsoid(grid, point, radii)
            contrast = rng.uniform(850, 910) * (1.0 - 0.3 * difficulty)
            blob = contrast * np.exp(-np.log(2) * distance)  # half the contrast on the ellipsoid's surface
            volume += np.where(lungs, blob, 0.0)
            mask |= (distance <= 1) & lungs
    volume += rng.normal(0, 10 + 30 * difficulty, volume.shape)
    if marker:
        volume[marker_box(size)] = 1000.0
    return np.clip(np.round(volume), -1024, 3071).astype(np.int16), mask


def generate_volumes(spec: VolumeSpec, split: str = "train") -> VolumeBatch:
    """`spec.num_examples` volumes of `split`; the same (spec, split) gives the same bytes."""
    spec.validate()
    rng = np.random.default_rng([spec.seed % 2**64, zlib.crc32(split.encode()), 7])
    count = spec.num_examples
    labels = np.zeros(count, np.int64)
    labels[: int(round(count * spec.positive_fraction))] = 1
    labels = rng.permutation(labels)
    strength = spec.confounder_strength
    probability = (np.where(labels == 1, 0.5 + strength / 2, 0.5 - strength / 2) if strength > 0 and split == "train"
                   else np.full(count, 0.5 if strength > 0 else 0.0))
    markers = rng.random(count) < probability
    volumes = np.empty((count,) + (spec.size,) * 3, np.int16)
    masks = np.empty((count,) + (spec.size,) * 3, np.uint8)
    for i in range(count):
        example = np.random.default_rng([spec.seed % 2**64, zlib.crc32(split.encode()), 8, i])
        volume, mask = _volume(example, spec.size, bool(labels[i]), spec.difficulty, bool(markers[i]))
        volumes[i], masks[i] = volume, mask.astype(np.uint8) * 255
    marker_masks = None
    if strength > 0:
        marker_masks = np.zeros_like(masks)
        for i in np.flatnonzero(markers):
            marker_masks[i][marker_box(spec.size)] = 255
    return VolumeBatch(volumes, masks, labels, [f"SYNV-{split}-{i:06d}" for i in range(count)], marker_masks)
