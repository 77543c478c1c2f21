"""Building a study from a run: `python -m tfxmed study create --run DIR --out study.db`.

Cases are drawn from a split, stratified by the model's outcome (TP / FP / FN / TN in a binary task at
the validation threshold evaluation chose, else 0.5; correct / wrong otherwise), as evenly as the
split allows. Each case's image and each method's map (overlaid on the image) are rendered to PNG once,
into `study_files/` beside `study.db`, under random names; cases and maps are named by random ids, and
the split index stays in the database (no page shows it; records carry no patient identifier beyond a
salted hash, which is not read at all). Each map's IoU and pointing-game hit on the case's lesion mask
(the project's `tfxmed.metrics.localization`, with the run's binarisation and tolerance) are stored
for the analysis.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil

import numpy as np

from tfxmed.errors import OutputExistsError, Refusal
from tfxmed.reader_study import db

__all__ = ["DEFAULT_METHODS", "outcomes", "stratified_sample", "create_study", "png_bytes", "write_study_db"]

DEFAULT_METHODS = ("gradcam", "ig", "fusion")  # fusion: the served fusion (Grad-CAM + IG), as exported
DISPLAY_SIZE = 320  # small images are enlarged (nearest neighbour) to at least this many pixels


def outcomes(labels: np.ndarray, probabilities: np.ndarray, multi_label: bool,
             threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """(outcome per case, the class each case's maps explain).

    Binary single-label: the finding is class 1; a case is TP / FP / FN / TN at `threshold`, and the
    maps explain class 1 whatever the decision, so a reader always judges "where is the finding?".
    Otherwise the maps explain the most probable class and the outcome is "correct" or "wrong".
    """
    labels, probabilities = np.asarray(labels), np.asarray(probabilities)
    if not multi_label and probabilities.shape[1] == 2:
        truth, positive = labels.argmax(-1) == 1, probabilities[:, 1] >= threshold
        names = np.where(truth, np.where(positive, "TP", "FN"), np.where(positive, "FP", "TN"))
        return names, np.ones(len(labels), int)
    explained = probabilities.argmax(-1)
    right = labels[np.arange(len(labels)), explained] > 0.5
    return np.where(right, "correct", "wrong"), explained


def stratified_sample(outcome: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """`count` indices, taken in turn from each outcome (shuffled within it) until each runs out."""
    rng = np.random.default_rng(seed)
    pools = [list(rng.permutation(np.flatnonzero(outcome == name))) for name in sorted(set(outcome.tolist()))]
    chosen: list[int] = []
    while len(chosen) < count and any(pools):
        for pool in pools:
            if pool and len(chosen) < count:
                chosen.append(int(pool.pop()))
    return np.array(sorted(chosen), dtype=int)


def png_bytes(rgb: np.ndarray) -> bytes:
    """RGB in [0, 1] → PNG bytes, enlarged by a whole factor to at least `DISPLAY_SIZE` pixels."""
    import io

    from PIL import Image

    picture = Image.fromarray(np.round(np.clip(rgb, 0.0, 1.0) * 255).astype(np.uint8))
    factor = max(1, -(-DISPLAY_SIZE // max(picture.size)))
    if factor > 1:
        picture = picture.resize((picture.width * factor, picture.height * factor), Image.NEAREST)
    stream = io.BytesIO()
    picture.save(stream, format="PNG")
    return stream.getvalue()


def _explainers(run, methods, batch_size: int) -> dict:
    from tfxmed.default_explanation import SERVED_FUSION, choose, explainer_for, load_choice
    from tfxmed.evaluation import collect_split
    from tfxmed.explain import make_explainer
    from tfxmed.models.spec import default_explain_layer

    explainers = {}
    for name in methods:
        if name == "default":  # the run's default explanation, as evaluation chose it (or chosen now)
            choice = load_choice(run.paths.eval_dir) or choose(
                run.model, run.config, collect_split(run.data_dir, run.manifest, run.config, "val"))
            explainers[choice.name] = explainer_for(run.model, choice, batch_size)
        elif name == "fusion":  # the fusion the SavedModel serves (LIME cannot run in a graph)
            explainers[name] = make_explainer("fusion", run.model, run.config.explain.layer or
                                              default_explain_layer(run.model), weights=dict(SERVED_FUSION),
                                              batch_size=batch_size)
        else:
            explainers[name] = make_explainer(name, run.model, default_layer=run.config.explain.layer,
                                              batch_size=batch_size)
    return explainers


def _threshold(run) -> float:
    if os.path.exists(run.paths.metrics):
        with open(run.paths.metrics, encoding="utf-8") as stream:
            validated = json.load(stream).get("classification_at_validation_threshold")
        if validated:
            return float(validated["threshold"])
    return 0.5


def create_study(run_dir: str, out: str, methods=DEFAULT_METHODS, cases: int = 40, split: str = "test",
                 seed: int = 0, batch_size: int = 16) -> dict:
    """Writes the study database `out` and its PNG folder; returns a summary (counts per outcome)."""
    from tfxmed import calibration
    from tfxmed.evaluation import collect_split
    from tfxmed.explain.overlay import display_maps, overlay
    from tfxmed.metrics.localization import iou, pointing_game
    from tfxmed.metrics.maps import minmax_per_map
    from tfxmed.runs import load_run

    folder = db.files_dir(out)
    if os.path.exists(out) or os.path.exists(folder):
        raise OutputExistsError(f"'{out}' (or {folder}) exists: choose a new study file")
    if cases < 1:
        raise Refusal(f"--cases must be at least 1; got {cases}")
    run = load_run(run_dir)
    if split not in run.manifest["splits"]:
        raise Refusal(f"split '{split}' is not in the run's dataset; choose from {', '.join(run.manifest['splits'])}")
    data = collect_split(run.data_dir, run.manifest, run.config, split)
    # Calibrated as evaluate reports them (the validation threshold below was chosen on the same scale).
    fit = calibration.run_calibration(run, lambda: collect_split(run.data_dir, run.manifest, run.config, "val"))
    probabilities = calibration.predict(run.model, data["image"], fit, run.manifest["multi_label"])
    threshold = _threshold(run)
    outcome, explained = outcomes(data["label"], probabilities, run.manifest["multi_label"], threshold)
    chosen = stratified_sample(outcome, cases, seed)
    images, masks = data["image"][chosen], data["mask"][chosen] > 0.5
    lesion = masks.reshape(len(chosen), -1).any(-1) & data["has_mask"][chosen].astype(bool).reshape(-1)
    explainers = _explainers(run, methods, batch_size)
    display = minmax_per_map(images, floor=1e-6)
    gray = np.repeat(display, 3, -1) if display.shape[-1] == 1 else display[..., :3]

    os.makedirs(folder)
    try:
        def save(rgb: np.ndarray) -> str:
            image_id = secrets.token_hex(16)
            with open(os.path.join(folder, f"{image_id}.png"), "wb") as stream:
                stream.write(png_bytes(rgb))
            return image_id

        order = np.random.default_rng(seed + 1).permutation(len(chosen))  # case positions reveal no outcome
        case_ids = [secrets.token_hex(8) for _ in order]
        case_rows = [(case_ids[k], position, int(chosen[k]), str(outcome[chosen[k]]),
                      int(np.argmax(data["label"][chosen[k]])), int(explained[chosen[k]]),
                      float(probabilities[chosen[k], explained[chosen[k]]]), save(gray[k]))
                     for position, k in enumerate(order)]
        map_rows = []
        for method, explainer in explainers.items():
            maps = np.asarray(explainer(images, explained[chosen]))
            scores = {"iou": iou(maps, masks, run.config.explain.binarize, run.config.explain.binarize_value),
                      "pointing": pointing_game(maps, masks, run.config.explain.pointing_tolerance)}
            blended = overlay(display, display_maps(maps)).numpy()
            for k in order:
                iou_k, pointing_k = (float(scores[key][k]) if lesion[k] and np.isfinite(scores[key][k]) else None
                                     for key in ("iou", "pointing"))
                map_rows.append((secrets.token_hex(8), case_ids[k], method, save(blended[k]), iou_k, pointing_k))
        write_study_db(out, run_dir, split, list(explainers), threshold, seed, run.manifest["class_names"], case_rows,
               map_rows)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        for path in (out, out + "-wal", out + "-shm"):
            if os.path.exists(path):
                os.remove(path)
        raise
    counts = {name: int((outcome[chosen] == name).sum()) for name in sorted(set(outcome[chosen].tolist()))}
    return {"study": out, "images": folder, "cases": len(chosen), "methods": list(explainers), "outcomes": counts,
            "threshold": threshold, "split": split}


def write_study_db(out: str, run_dir: str, split: str, methods: list[str], threshold: float, seed: int,
                   class_names: list[str], case_rows: list[tuple], map_rows: list[tuple]) -> None:
    """Writes the study database: its meta entries (with a fresh session-signing secret), cases and maps.

    `case_rows`: (case_id, position, split_index, outcome, label, explained_class, probability, image_id);
    `map_rows`: (map_id, case_id, method, image_id, iou or None, pointing-game hit or None).
    """
    connection = db.connect(out)
    try:
        connection.executescript(db.SCHEMA)
        with db.transaction(connection):
            entries = {"run_dir": os.path.abspath(run_dir) if run_dir else "", "split": split,
                       "methods": json.dumps(methods),
                       "threshold": str(threshold), "seed": str(seed), "class_names": json.dumps(class_names),
                       "created": db.now(), "secret_key": secrets.token_hex(32)}
            connection.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", entries.items())
            connection.executemany("INSERT INTO cases VALUES (?, ?, ?, ?, ?, ?, ?, ?)", case_rows)
            connection.executemany("INSERT INTO maps VALUES (?, ?, ?, ?, ?, ?)", map_rows)
    finally:
        connection.close()
