"""The embedded synthetic chest-X-ray benchmark, with a ground-truth lesion mask per image.

Each grayscale image shows a frontal "chest radiograph": a dark background, a torso with neck and
shoulders, two dark lung fields with irregular borders and domed diaphragms, a bright mediastinum
and heart, a spine, clavicles, two families of partially transparent ribs (whose crossings make
natural bright spots inside the lungs), faint vascular texture, and per-image acquisition changes
(gain, offset, gamma, a smooth low-frequency gradient, Gaussian noise). Anatomy is jittered per image.

Positives carry lesions strictly inside the lung fields: "opacity" (diffuse blob, a sum of rotated
anisotropic Gaussians), "nodule" (small, sharp, round) and "effusion" (brightening at the bottom of a
lung below a curved meniscus). A lesion's mask is where its intensity exceeds half its peak,
intersected with the lungs; an image's mask is the union over its lesions. Every image, positive or
negative, may also carry benign bright spots outside the lungs (electrodes, bone islands), so "any
bright blob" does not solve the task.

An optional shortcut confounder (a bright square in the top-left corner, correlated with the label
in the "train" split only) lets users test whether a model or an explanation uses a spurious cue.
The same (spec, split) gives byte-identical output. NumPy and SciPy only.
"""

from __future__ import annotations

import dataclasses
import functools
import zlib

import numpy as np
from scipy.special import expit

__all__ = ["LESION_TYPES", "SyntheticSpec", "SyntheticBatch", "generate", "class_names", "marker_region"]

LESION_TYPES = ("opacity", "nodule", "effusion")

@dataclasses.dataclass(frozen=True)
class SyntheticSpec:
    """What to generate.

    `positive_fraction` is the exact share of label-1 images (binary) or the probability of each
    lesion type (multi-label). `difficulty` 0 gives large high-contrast lesions and little noise, 1
    faint small lesions and more noise. `confounder_strength` in [0, 1] ties a corner marker to the
    label in the "train" split (0: no marker at all).
    """

    image_size: int = 64
    num_examples: int = 1000
    positive_fraction: float = 0.5
    difficulty: float = 0.5
    multi_label: bool = False
    confounder_strength: float = 0.0
    seed: int = 42

    def validate(self) -> None:
        """Raises ValueError naming the first field outside its allowed range."""

        def check(name: str, valid: bool, allowed: str) -> None:
            if not valid:
                raise ValueError(f"SyntheticSpec.{name} must be {allowed}, got {getattr(self, name)!r}")

        def is_integer(value: object) -> bool:
            return isinstance(value, (int, np.integer)) and not isinstance(value, bool)

        check("image_size", is_integer(self.image_size) and self.image_size >= 32, "an integer >= 32")
        check("num_examples", is_integer(self.num_examples) and self.num_examples >= 1, "an integer >= 1")
        check("positive_fraction", 0.0 <= self.positive_fraction <= 1.0, "in [0, 1]")
        check("difficulty", 0.0 <= self.difficulty <= 1.0, "in [0, 1]")
        check("confounder_strength", 0.0 <= self.confounder_strength <= 1.0, "in [0, 1]")
        check("seed", is_integer(self.seed), "an integer")


@dataclasses.dataclass
class SyntheticBatch:
    """Generated examples: images, union lesion masks, labels and synthetic patient ids."""

    images: np.ndarray  # uint8 [N, S, S, 1]
    masks: np.ndarray  # uint8 [N, S, S, 1], 0 or 255 (union of the image's lesions; zero for normals)
    labels: np.ndarray  # binary: int64 [N] in {0, 1}; multi-label: int64 [N, len(LESION_TYPES)] multi-hot
    patient_ids: list[str]  # "SYN-<split>-000123": synthetic, not real people
    # uint8 [N, S, S, 1], 255 where the corner marker is drawn; None when confounder_strength is 0
    markers: np.ndarray | None = None


def class_names(spec: SyntheticSpec) -> list[str]:
    """["normal", "lesion"] for the binary task, the lesion types for the multi-label one."""
    return list(LESION_TYPES) if spec.multi_label else ["normal", "lesion"]


@dataclasses.dataclass
class _Anatomy:
    image: np.ndarray  # float intensities before lesions and acquisition
    lungs: np.ndarray  # bool lung fields
    sides: list[np.ndarray]  # bool lung field per side (image left, image right)
    centres: list[tuple[float, float]]  # (y, x) centre of each lung
    core: np.ndarray  # bool lung pixels away from the borders, where lesion centres go
    body: np.ndarray  # soft body outline in [0, 1]


@dataclasses.dataclass(frozen=True)
class _Grid:
    """Pixel coordinates in [-1, 1] (y down) as broadcastable float32 column/row, plus cached bases."""

    y: np.ndarray  # [S, 1]
    x: np.ndarray  # [1, S]
    harmonics: dict[int, tuple[np.ndarray, np.ndarray]]  # k -> (sin kθ, cos kθ) around the centre, [S, S]
    cosines: np.ndarray  # [S, 16] cosine basis cos(j π (t + 1) / 2) for the smooth random fields

    @property
    def size(self) -> int:
        return self.y.shape[0]

    def point(self, flat_index: int) -> tuple[float, float]:
        """(y, x) of a pixel given by its flat index."""
        row, column = divmod(int(flat_index), self.size)
        return float(self.y[row, 0]), float(self.x[0, column])


@functools.lru_cache(maxsize=8)
def _grid(size: int) -> _Grid:
    line = np.linspace(-1.0, 1.0, size, dtype=np.float32)
    theta = np.arctan2(line[:, None], line[None, :])
    harmonics = {k: (np.sin(k * theta), np.cos(k * theta)) for k in (2, 3, 5)}
    cosines = np.cos(np.pi * np.outer((line + 1) / 2, np.arange(16))).astype(np.float32)
    return _Grid(line[:, None], line[None, :], harmonics, cosines)


def _ellipse(grid: _Grid, centre_y: float, centre_x: float, radius_y: float, radius_x: float | np.ndarray,
             angle: float = 0.0) -> np.ndarray:
    """Squared normalised distance to a rotated ellipse's centre (< 1 inside), [S, S]."""
    dy, dx = grid.y - np.float32(centre_y), grid.x - np.float32(centre_x)
    cos, sin = np.float32(np.cos(angle)), np.float32(np.sin(angle))
    along = (cos * dx + sin * dy) / np.asarray(radius_x, dtype=np.float32)
    across = (cos * dy - sin * dx) / np.float32(radius_y)
    return along * along + across * across


def _smooth_field(rng: np.random.Generator, grid: _Grid, low: float, high: float) -> np.ndarray:
    """A random smooth zero-mean, unit-deviation field of about `low`..`high` cycles across the image, [S, S]."""
    order = np.arange(grid.cosines.shape[1])
    radius = np.hypot(order[:, None], order[None, :]) / 2  # cycles across the image
    band = (radius >= low) & (radius <= high)
    coefficients = np.where(band, rng.standard_normal(band.shape), 0.0).astype(np.float32)
    field = grid.cosines @ coefficients @ grid.cosines.T
    return (field - field.mean()) / np.float32(max(float(field.std()), 1e-6))


def _soft(value: np.ndarray) -> np.ndarray:
    """A smooth step (the logistic function), computed in float32."""
    return expit(np.asarray(value, dtype=np.float32))


def _anatomy(rng: np.random.Generator, grid: _Grid) -> _Anatomy:
    """Background, body, lungs, mediastinum, heart, spine, clavicles and ribs, jittered per image."""
    yy, xx = grid.y, grid.x
    shift_y, shift_x = rng.uniform(-0.05, 0.05), rng.uniform(-0.05, 0.05)
    scale = rng.uniform(0.92, 1.05)
    lateral = np.abs(xx - np.float32(shift_x))  # [1, S]
    # Torso: a superellipse (broad shoulders) plus a neck; soft tissue thickens towards the abdomen.
    across = lateral / np.float32(0.9 * scale)
    torso_distance = across * across * across + ((yy - np.float32(0.22 + shift_y)) / np.float32(0.98 * scale)) ** 2
    torso = _soft(10 * (1 - torso_distance))
    neck = _soft(25 * (0.22 * scale - lateral)) * _soft(25 * (-0.6 - yy))
    body = np.maximum(torso, neck)
    thickness = np.sqrt(np.clip(1 - torso_distance, 0, 1))
    image = 0.04 + body * (0.3 + 0.1 * thickness + 0.14 * _soft(10 * (yy - 0.42 - shift_y)))

    # Lung fields: tapered ellipses with wobbly borders, domed diaphragms, carved out by the heart.
    heart = _soft(8 * (1 - _ellipse(grid, 0.24 + shift_y, 0.13 * scale + shift_x, 0.28 * scale,
                                    0.34 * scale * rng.uniform(0.9, 1.15), rng.uniform(-0.5, -0.2))))
    lungs_soft, sides, centres = np.zeros_like(image), [], []
    core = np.zeros(image.shape, bool)
    for side in (-1.0, 1.0):
        centre_y, centre_x = -0.02 + shift_y, side * 0.4 * scale + shift_x
        radius_y, radius_x = 0.62 * scale * rng.uniform(0.95, 1.05), 0.3 * scale * rng.uniform(0.92, 1.08)
        taper = 0.78 + 0.11 * np.clip((yy - np.float32(centre_y)) / np.float32(radius_y) + 1, 0, 2)  # narrow apex
        wobble = np.float32(1.0)
        for sine, cosine in grid.harmonics.values():
            amplitude, phase = rng.uniform(0.01, 0.035), rng.uniform(0, 2 * np.pi)
            wobble = (wobble + np.float32(amplitude * np.cos(phase)) * sine
                      + np.float32(amplitude * np.sin(phase)) * cosine)
        distance = _ellipse(grid, centre_y, centre_x, radius_y, radius_x * taper, side * 0.1) / wobble
        outward = (xx - np.float32(centre_x)) / np.float32(radius_x)
        diaphragm = np.float32(centre_y + 0.82 * radius_y) - np.float32(rng.uniform(0.1, 0.2)) * np.clip(
            1 - outward * outward, 0, 1)
        lung = _soft(25 * (1 - distance)) * _soft(60 * (diaphragm - yy)) * (1 - heart)
        lungs_soft = np.maximum(lungs_soft, lung)
        sides.append(lung > 0.5)
        centres.append((centre_y, centre_x))
        core |= (distance < 0.6) & (yy < diaphragm - 0.08) & (heart < 0.2)
    vessels = 0.5 + 0.5 * _smooth_field(rng, grid, 3.0, 7.0)
    hilum = sum(np.exp(-_ellipse(grid, cy + 0.05, cx - np.sign(cx) * 0.12, 0.2, 0.12)) for cy, cx in centres)
    image = image - lungs_soft * (0.27 - 0.05 * vessels - 0.06 * hilum)

    mediastinum = _soft(20 * (0.13 * scale - lateral)) * _soft(20 * (0.35 + shift_y - yy))
    image = image + 0.15 * np.maximum(mediastinum, heart) * body * (1 - lungs_soft)
    vertebrae = 0.7 + 0.3 * np.cos(np.float32(2 * np.pi * rng.uniform(5.5, 6.5)) * yy)
    image = image + 0.08 * _soft(30 * (0.065 * scale - lateral)) * vertebrae * body
    trachea = _soft(40 * (0.04 * scale - lateral)) * _soft(15 * (-0.25 + shift_y - yy))
    image = image - 0.07 * trachea * body

    # Clavicles, then two families of ribs (posterior curving down laterally, anterior rising), both
    # partially transparent; they are faint over the mediastinum and vanish outside the rib cage.
    clavicle_height = np.float32(-0.62 * scale + shift_y + rng.uniform(-0.04, 0.04))
    clavicle_line = clavicle_height + 0.3 * (lateral - 0.1) ** 2 - 0.08 * lateral
    offset = (yy - clavicle_line) / np.float32(0.035)
    clavicles = np.exp(-offset * offset) * (_soft(30 * (lateral - 0.08)) * _soft(20 * (0.8 - lateral)))
    image = image + 0.14 * clavicles * body
    ribcage = _soft(12 * (1 - _ellipse(grid, -0.02 + shift_y, shift_x, 0.68 * scale, 0.72 * scale))) * _soft(
        30 * (lateral - 0.07))
    frequency = np.float32(np.pi * rng.uniform(4.0, 4.8))
    posterior = np.clip(np.sin(frequency * (yy - 0.55 * lateral * lateral + 0.15 * lateral)
                               + np.float32(rng.uniform(0, 2 * np.pi))), 0, None)
    anterior = np.clip(np.sin(frequency * 0.8 * (yy + 0.45 * lateral) + np.float32(rng.uniform(0, 2 * np.pi))), 0, None)
    posterior, anterior = posterior * posterior, anterior * anterior * anterior
    posterior_weight, anterior_weight = np.float32(rng.uniform(0.06, 0.1)), np.float32(rng.uniform(0.03, 0.05))
    image = image + ribcage * (posterior_weight * posterior * posterior + anterior_weight * anterior * anterior)
    return _Anatomy(image, lungs_soft > 0.5, sides, centres, core, body)


def _lesion(rng: np.random.Generator, kind: str, anatomy: _Anatomy, grid: _Grid, size_scale: float) -> np.ndarray:
    """One lesion's intensity inside the lungs, with peak 1 (all zero if it found no room), [S, S]."""
    yy, xx = grid.y, grid.x
    if kind == "effusion":
        side = int(rng.integers(2))
        field = anatomy.sides[side] if anatomy.sides[side].any() else anatomy.lungs
        rows = np.flatnonzero(field.any(axis=1))
        top, bottom = float(yy[rows[0], 0]), float(yy[rows[-1], 0])
        height = (bottom - top) * rng.uniform(0.15, 0.35) * (0.6 + 0.4 * size_scale)
        centre_x = anatomy.centres[side][1]
        outward = (xx - np.float32(centre_x)) * np.float32(np.sign(centre_x) / 0.3)  # > 0 towards the ribs
        rise = np.float32((bottom - top) * rng.uniform(0.04, 0.1))
        meniscus = np.float32(bottom - height) - rise * (outward + 0.5 * outward * outward)
        depth = (yy - meniscus) / np.float32(height)
        intensity = _soft((yy - meniscus) / np.float32(0.02)) * (0.75 + 0.25 * np.clip(depth, 0, 1)) * field
    else:
        candidates = np.flatnonzero(anatomy.core if anatomy.core.any() else anatomy.lungs)
        centre_y, centre_x = grid.point(candidates[rng.integers(len(candidates))])
        if kind == "nodule":
            radius = rng.uniform(0.05, 0.09) * size_scale
            distance = np.sqrt(_ellipse(grid, centre_y, centre_x, radius, radius * rng.uniform(0.85, 1.0),
                                        rng.uniform(0, np.pi)))
            intensity = _soft(6 * (1 - distance))
        else:
            intensity = np.zeros(anatomy.image.shape, np.float32)
            for _ in range(int(rng.integers(1, 4))):
                sigma = rng.uniform(0.06, 0.12) * size_scale
                offset_y, offset_x = rng.normal(0, sigma * 0.7, 2)
                blob = np.exp(-0.5 * _ellipse(grid, centre_y + offset_y, centre_x + offset_x, sigma,
                                              sigma * rng.uniform(0.45, 1.0), rng.uniform(0, np.pi)))
                intensity = intensity + np.float32(rng.uniform(0.6, 1.0)) * blob
            intensity = intensity * (1 + 0.2 * _smooth_field(rng, grid, 3.0, 6.0))  # mottled
        intensity = intensity * anatomy.lungs
    peak = float(intensity.max())
    return intensity / np.float32(peak) if peak > 0 else intensity


def _render(rng: np.random.Generator, anatomy: _Anatomy, grid: _Grid, kinds: list[str], difficulty: float,
            marker: bool) -> tuple[np.ndarray, np.ndarray]:
    """Adds lesions, distractors, acquisition effects and the marker; returns (uint8 image, bool mask)."""
    image, mask = anatomy.image, np.zeros(anatomy.image.shape, bool)
    contrast_scale, size_scale = 0.32 - 0.24 * difficulty, 1.0 - 0.4 * difficulty
    for kind in kinds:
        intensity = _lesion(rng, kind, anatomy, grid, size_scale)
        gain = {"nodule": 1.3, "effusion": 1.4}.get(kind, 1.0)
        image = image + np.float32(rng.uniform(0.55, 1.0) * contrast_scale * gain) * intensity
        mask |= (intensity >= 0.5) & anatomy.lungs
    # Benign bright spots outside the lungs in positives and negatives alike (electrodes, bone islands).
    outside = np.flatnonzero((~anatomy.lungs) & (anatomy.body > 0.9) & (np.abs(grid.x) < 0.85) & (grid.y > -0.75))
    for _ in range(int(rng.poisson(0.9)) if len(outside) else 0):
        centre_y, centre_x = grid.point(outside[rng.integers(len(outside))])
        radius = rng.uniform(0.03, 0.06)
        distance = np.sqrt(_ellipse(grid, centre_y, centre_x, radius, radius))
        image = image + np.float32(rng.uniform(0.12, 0.3)) * _soft(6 * (1 - distance)) * ~anatomy.lungs
    # Acquisition: gain, offset, gamma, a smooth low-frequency gradient, then noise.
    image = image * np.float32(rng.uniform(0.85, 1.15)) + np.float32(rng.uniform(-0.03, 0.03))
    image = image + np.float32(rng.uniform(0.01, 0.035)) * _smooth_field(rng, grid, 0.5, 1.0)
    image = np.exp(np.float32(rng.uniform(0.8, 1.25)) * np.log(np.clip(image, 1e-4, 1)))  # gamma
    noise = rng.standard_normal(image.shape, dtype=np.float32)
    image = image + np.float32(0.012 + 0.05 * difficulty) * noise
    if marker:
        image[marker_region(grid.size)] = rng.uniform(0.88, 0.98)
    return np.clip(image * 255 + 0.5, 0, 255).astype(np.uint8), mask


def marker_region(size: int) -> tuple[slice, slice]:
    """The (rows, columns) of the corner marker in an image of `size` pixels."""
    side, offset = max(3, round(size / 10)), max(1, size // 32)
    return slice(offset, offset + side), slice(offset, offset + side)


def _example_rng(spec: SyntheticSpec, split: str, index: int, stream: int) -> np.random.Generator:
    """Independent stream per (seed, split, example, stream); 0 = anatomy, 1 = lesions and acquisition."""
    return np.random.default_rng([int(spec.seed) % 2**64, zlib.crc32(split.encode("utf-8")), 1, index, stream])


def _lung_field(spec: SyntheticSpec, split: str, index: int) -> np.ndarray:
    """The bool lung fields of example `index` of `generate(spec, split)` (for tests and debugging)."""
    return _anatomy(_example_rng(spec, split, index, 0), _grid(spec.image_size)).lungs


def generate(spec: SyntheticSpec, split: str = "train") -> SyntheticBatch:
    """Generates `spec.num_examples` examples of `split`; the same (spec, split) gives the same bytes."""
    spec.validate()
    if not isinstance(split, str) or not split:
        raise ValueError(f"split must be a non-empty string such as 'train', got {split!r}")
    rng = np.random.default_rng([int(spec.seed) % 2**64, zlib.crc32(split.encode("utf-8")), 0])
    count, grid = spec.num_examples, _grid(spec.image_size)
    if spec.multi_label:
        labels = (rng.random((count, len(LESION_TYPES))) < spec.positive_fraction).astype(np.int64)
        positive = labels.any(axis=1)
    else:
        labels = np.zeros(count, np.int64)
        labels[: int(round(count * spec.positive_fraction))] = 1
        labels = rng.permutation(labels)
        positive = labels.astype(bool)
    strength = spec.confounder_strength
    if strength > 0 and split == "train":
        probability = np.where(positive, 0.5 + strength / 2, 0.5 - strength / 2)
    else:
        probability = np.full(count, 0.5 if strength > 0 else 0.0)
    markers = rng.random(count) < probability

    images = np.empty((count, spec.image_size, spec.image_size, 1), np.uint8)
    masks = np.empty_like(images)
    for i in range(count):
        anatomy = _anatomy(_example_rng(spec, split, i, 0), grid)
        lesion_rng = _example_rng(spec, split, i, 1)
        if spec.multi_label:
            kinds = []
            for kind, present in zip(LESION_TYPES, labels[i]):
                repeats = 1 if kind == "effusion" else int(lesion_rng.integers(1, 3 if kind == "opacity" else 4))
                kinds += [kind] * repeats * int(present)
        elif positive[i]:
            kinds = [str(kind) for kind in lesion_rng.choice(["opacity", "nodule"], size=lesion_rng.integers(1, 4))]
        else:
            kinds = []
        image, mask = _render(lesion_rng, anatomy, grid, kinds, spec.difficulty, bool(markers[i]))
        images[i, ..., 0] = image
        masks[i, ..., 0] = mask.astype(np.uint8) * 255
    patient_ids = [f"SYN-{split}-{i:06d}" for i in range(count)]
    marker_masks = None
    if strength > 0:
        marker_masks = np.zeros_like(images)
        marker_masks[markers, marker_region(spec.image_size)[0], marker_region(spec.image_size)[1]] = 255
    return SyntheticBatch(images=images, masks=masks, labels=labels, patient_ids=patient_ids, markers=marker_masks)
