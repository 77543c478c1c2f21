"""Shortcut-audit arithmetic: where an explanation's mass lies, and how well a mass threshold flags
the images whose decision rests on a spurious cue.

N-dimensional like `tfxmed.metrics.localization`: maps [N, *spatial], boolean regions of the same
shape. No TensorFlow.
"""

from __future__ import annotations

import numpy as np

__all__ = ["region_mass", "choose_flag_threshold", "flag_scores", "DEFAULT_FLAG_THRESHOLD", "MAX_FALSE_ALARM"]

# Used when validation cannot choose (it holds no shortcut-driven image, or only such images): a
# quarter of the explanation on a cue that covers about 1% of the image is already far from chance.
DEFAULT_FLAG_THRESHOLD = 0.25
# The flag's false-alarm budget on validation: at most this share of the images whose decision does not
# rest on the cue may be flagged. Best F1 alone degenerates when few images are cue-driven (a model that
# merely reacts to the cue now and then): F1 then prefers flagging almost everything.
MAX_FALSE_ALARM = 0.05


def region_mass(maps: np.ndarray, *regions: np.ndarray) -> np.ndarray:
    """Share of each map's positive mass inside each region, and elsewhere: [N, len(regions) + 1].

    Regions are taken in order and do not double-count (a pixel counts for the first region that
    holds it); the last column is the rest of the image. A map with no positive mass gives NaNs.
    """
    maps = np.maximum(np.asarray(maps, np.float64), 0.0)
    flat = maps.reshape(len(maps), -1)
    total = flat.sum(1)
    taken = np.zeros_like(flat, dtype=bool)
    columns = []
    for region in regions:
        region = np.asarray(region, bool).reshape(len(maps), -1)
        if region.shape != flat.shape:
            raise ValueError(f"region has {region.shape[1]} pixels per image, maps have {flat.shape[1]}")
        inside = region & ~taken
        columns.append((flat * inside).sum(1))
        taken |= inside
    columns.append((flat * ~taken).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total[:, None] > 0, np.stack(columns, 1) / total[:, None], np.nan)


def flag_scores(flags: np.ndarray, truth: np.ndarray) -> dict:
    """Recall, precision and F1 of boolean `flags` against boolean `truth` (None where undefined)."""
    flags, truth = np.asarray(flags, bool), np.asarray(truth, bool)
    hits = int((flags & truth).sum())
    recall = hits / truth.sum() if truth.any() else None
    precision = hits / flags.sum() if flags.any() else None
    f1 = 2 * recall * precision / (recall + precision) if recall and precision else (0.0 if truth.any() else None)
    return {"recall": recall, "precision": precision, "f1": f1, "flagged": int(flags.sum()),
            "shortcut_driven": int(truth.sum()), "images": int(len(flags)),
            "flag_rate": float(flags.mean()) if len(flags) else None,
            # flags on images whose decision does not rest on the cue
            "false_alarm_rate": float(flags[~truth].mean()) if (~truth).any() else None}


def choose_flag_threshold(masses: np.ndarray, truth: np.ndarray,
                          max_false_alarm: float = MAX_FALSE_ALARM) -> tuple[float, str]:
    """The mass threshold with the best F1 against `truth` on these (validation) images, raised where
    needed so that at most `max_false_alarm` of the images that are not cue-driven are flagged.

    Returns (threshold, how it was chosen). Candidates are midpoints between sorted masses; ties go
    to the higher threshold (fewer flags). Without both kinds of image it falls back to
    `DEFAULT_FLAG_THRESHOLD`.
    """
    masses, truth = np.asarray(masses, float), np.asarray(truth, bool)
    finite = np.isfinite(masses)
    masses, truth = masses[finite], truth[finite]
    if not truth.any() or truth.all():
        return DEFAULT_FLAG_THRESHOLD, "default (validation has no shortcut-driven image)" if not truth.any() \
            else "default (every validation image is shortcut-driven)"
    values = np.unique(masses)
    candidates = np.concatenate([[values[0] - 1e-9], (values[1:] + values[:-1]) / 2, [values[-1] + 1e-9]])
    innocent = np.sort(masses[~truth])
    allowed = int(np.floor(max_false_alarm * len(innocent)))  # innocent images that may lie above
    # flags need a mass above this one (none needed when every innocent image may be flagged)
    floor = innocent[len(innocent) - allowed - 1] if allowed < len(innocent) else -np.inf
    best, best_f1 = DEFAULT_FLAG_THRESHOLD, -1.0
    for threshold in candidates[candidates >= floor]:
        f1 = flag_scores(masses > threshold, truth)["f1"] or 0.0
        if f1 >= best_f1:
            best, best_f1 = float(threshold), f1
    return best, (f"best F1 on validation ({best_f1:.3f}) with at most {max_false_alarm:.0%} of the images "
                  "that are not cue-driven flagged")
