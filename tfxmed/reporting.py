"""The HTML report behind `python -m tfxmed.report --run DIR`: one self-contained file a reviewer opens.

Sections: run configuration; diagnostic metrics with bootstrap CIs (at 0.5 and at the validation
threshold); ROC, precision-recall, calibration and confusion-matrix figures; explanation metrics per
method on the lesion images; galleries of true positives, false positives and false negatives with
each method's overlay next to the ground-truth mask. Every image is embedded as a PNG data URI.
Nothing identifying is shown: cases are named by their index in the split.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import re

import numpy as np
import yaml

from tfxmed.config import to_dict
from tfxmed.storage import write_text_atomic

__all__ = ["build_report", "gallery_cases", "reader_study_section", "DEFAULT_METHODS"]

DEFAULT_METHODS = ("default", "gradcam")  # "default": the run's default explanation; Grad-CAM at the declared layer
GALLERIES = (("tp", "True positives"), ("fp", "False positives"), ("fn", "False negatives"))


def gallery_cases(labels: np.ndarray, probabilities: np.ndarray, multi_label: bool, threshold: float = 0.5,
                  per_gallery: int = 6) -> dict[str, list[tuple[int, int, float]]]:
    """(index, class to explain, probability of it) per gallery, most confident first.

    Binary: decisions on class 1 at `threshold`. Multi-class: a correct argmax is a TP (explain the
    class); a wrong one is an FP of the predicted class and an FN of the true class. Multi-label:
    every (image, label) decision at `threshold`.
    """
    cases: dict[str, list[tuple[int, int, float]]] = {"tp": [], "fp": [], "fn": []}
    count, classes = probabilities.shape
    if multi_label or classes == 2:
        truth = labels.astype(bool) if multi_label else (labels == 1)[:, None]
        scores = probabilities if multi_label else probabilities[:, 1:2]
        positive = scores >= threshold
        for kind, selected in (("tp", truth & positive), ("fp", ~truth & positive), ("fn", truth & ~positive)):
            for i, column in zip(*np.nonzero(selected)):
                cases[kind].append((int(i), int(column if multi_label else 1), float(scores[i, column])))
    else:
        predicted = probabilities.argmax(-1)
        for i in range(count):
            if predicted[i] == labels[i]:
                cases["tp"].append((i, int(labels[i]), float(probabilities[i, labels[i]])))
            else:
                cases["fp"].append((i, int(predicted[i]), float(probabilities[i, predicted[i]])))
                cases["fn"].append((i, int(labels[i]), float(probabilities[i, labels[i]])))
    # Confident decisions first: for FN that is the lowest probability of the missed class.
    order = {"tp": -1.0, "fp": -1.0, "fn": 1.0}
    return {kind: sorted(items, key=lambda c: (order[kind] * c[2], c[0]))[:per_gallery]
            for kind, items in cases.items()}


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _file_uri(path: str) -> str | None:
    if not os.path.exists(path):
        return None
    with open(path, "rb") as stream:
        return _data_uri(stream.read())


def _gallery_png(images, masks, maps: dict[str, np.ndarray], captions: list[str]) -> bytes:
    """Rows of cases: the image, the ground-truth mask over it, then each method's overlay."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from tfxmed.explain.overlay import display_maps, overlay
    from tfxmed.metrics.maps import minmax_per_map

    shown = minmax_per_map(images, floor=1e-6)
    grey = shown.mean(-1)
    columns = ["image", "ground truth", *maps]
    figure = Figure(figsize=(1.9 * len(columns), 2.0 * len(images)))
    FigureCanvasAgg(figure)
    # Display only: each map scaled by its 99th percentile, so a few extreme pixels (common with IG)
    # do not leave the rest of the map invisible.
    scaled = {name: display_maps(values, quantile=0.99) for name, values in maps.items()}
    blended = {name: overlay(shown, values).numpy() for name, values in scaled.items()}
    for row in range(len(images)):
        panels = [grey[row], grey[row], *(blended[name][row] for name in maps)]
        for column, panel in enumerate(panels):
            axis = figure.add_subplot(len(images), len(columns), row * len(columns) + column + 1)
            axis.imshow(panel, cmap="gray" if panel.ndim == 2 else None)
            axis.axis("off")
            if column == 1:
                mask = masks[row].squeeze(-1)
                if mask.max() > 0:
                    axis.contourf(mask, [0.5, 1.5], colors=["red"], alpha=0.35)
                    axis.contour(mask, [0.5], colors="red", linewidths=0.8)
                else:
                    axis.text(0.5, 0.05, "no mask", color="yellow", ha="center", transform=axis.transAxes, fontsize=7)
            title = captions[row] if column == 0 else (wrap_name(columns[column]) if row == 0 else "")
            axis.set_title(title, fontsize=7, loc="left" if column == 0 else "center")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    return buffer.getvalue()


def wrap_name(name: str, width: int = 24) -> str:
    """A method name broken into lines of about `width` characters before its `[option]` parts, so long
    names (`ig[baseline=blurred][blur_sigma=2]...`) do not run over the next column's title."""
    lines = [""]
    for part in re.split(r"(?=\[)", name):
        if lines[-1] and len(lines[-1]) + len(part) > width:
            lines.append("")
        lines[-1] += part
    return "\n".join(lines)


def _table(header: list[str], rows: list[list], table_id: str = "") -> str:
    def cell(value):
        if isinstance(value, float):
            return f"{value:.3f}"
        return html.escape("–" if value is None else str(value))

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    identifier = f" id={table_id!r}" if table_id else ""
    return f"<table{identifier}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _diagnostic_rows(report: dict, names: list[str]) -> list[list]:
    rows = [["AUC (macro)", report["auc"], _ci(report.get("auc_ci"))], ["accuracy", report["accuracy"], None],
            ["precision (macro)", report["precision_macro"], None], ["recall (macro)", report["recall_macro"], None],
            ["F1 (macro)", report["f1_macro"], None]]
    for name in names:
        pair = _pair(report["sensitivity"][name], report["specificity"][name])
        rows.append([f"{name}: sensitivity / specificity", pair, None])
        rows.append([f"{name}: AUC", report["auc_per_class"].get(name), None])
    return rows


def _ci(ci: dict | None) -> str | None:
    if not ci or ci.get("low") is None or not np.isfinite(ci["low"]):
        return None
    return f"{ci['low']:.3f} – {ci['high']:.3f}"


def _pair(a, b) -> str:
    return " / ".join("–" if v is None else f"{v:.3f}" for v in (a, b))


def build_report(run_dir: str, split: str = "test", methods=DEFAULT_METHODS, per_gallery: int = 6,
                 explain_limit: int = 64, out: str | None = None, diagnose_images: int = 16) -> str:
    """Writes `RUN/report.html` (or `out`) and returns its path; runs the evaluation first if missing.

    `methods` may name "default": the run's default explanation (`tfxmed.default_explanation`), as
    evaluation chose it. Each method also gets ground-truth-free diagnostics on `diagnose_images`
    images: map specificity (with a warning for near-constant maps), max-sensitivity and the
    cascading model-randomisation check.
    """
    import tensorflow as tf

    from tfxmed import calibration as calibration_lib
    from tfxmed.data.selection import lesion_examples
    from tfxmed.evaluation import collect_split, evaluate_run, metric_labels
    from tfxmed.metrics import localization_summary
    from tfxmed.metrics.curves import calibration_summary, plot_calibration, plot_precision_recall
    from tfxmed.metrics.faithfulness import deletion_insertion
    from tfxmed.metrics.road import road
    from tfxmed.runs import load_run
    from tfxmed.volume_gallery import volume_gallery_png

    run = load_run(run_dir)
    config, manifest, data_dir, model = run.config, run.manifest, run.data_dir, run.model
    from tfxmed.default_explanation import explainer_for, load_choice
    from tfxmed.explain import METHODS, make_explainer
    from tfxmed.explain.sanity import diagnose

    unknown = [m for m in methods if m != "default" and m not in METHODS]
    if unknown:  # before any work
        raise ValueError(f"unknown explanation method(s) {unknown}; choose from default, {', '.join(METHODS)}")
    eval_dir, metrics_path = run.paths.eval_dir, run.paths.metrics
    metrics = None
    if os.path.exists(metrics_path):
        with open(metrics_path, encoding="utf-8") as stream:
            metrics = json.load(stream)
    if not metrics or metrics.get("split") != split or load_choice(eval_dir) is None:
        metrics = evaluate_run(run_dir, split)
    choice = load_choice(eval_dir)
    makers = {}
    for method in methods:
        if method == "default":
            makers[f"{choice.name} (default)"] = lambda m: explainer_for(m, choice)
        elif method != choice.name:
            makers[method] = lambda m, method=method: make_explainer(method, m, default_layer=config.explain.layer,
                                                                     batch_size=32)
    explainers = {name: make(model) for name, make in makers.items()}
    methods = list(explainers)
    data = collect_split(data_dir, manifest, config, split)
    multi_label, names = manifest["multi_label"], manifest["class_names"]
    # Calibrated as evaluate calibrated them (RUN/calibration.json, fitted on validation).
    probabilities = calibration_lib.predict(model, data["image"], calibration_lib.run_calibration(
        run, lambda: collect_split(data_dir, manifest, config, "val")), multi_label)
    labels = metric_labels(data, multi_label)
    plot_precision_recall(labels, probabilities, names, multi_label, os.path.join(eval_dir, "precision_recall.png"))
    plot_calibration(labels, probabilities, names, multi_label, os.path.join(eval_dir, "calibration.png"))
    calibration = calibration_summary(labels, probabilities, names, multi_label)
    at_validation = metrics.get("classification_at_validation_threshold")
    threshold = at_validation["threshold"] if at_validation else 0.5

    # Explanation metrics per method, on (at most explain_limit) images with a lesion mask.
    forward = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    predict = lambda x: forward(x).numpy()  # noqa: E731
    lesion = lesion_examples(data)[:explain_limit]
    images, targets = data["image"][lesion], data["label"][lesion]
    explanation_rows = []
    for method, explainer in explainers.items() if len(lesion) else ():
        maps = explainer(images, targets)
        local = localization_summary(maps, data["mask"][lesion] > 0.5, config.explain.binarize,
                                     config.explain.binarize_value, config.explain.pointing_tolerance)
        faithful = deletion_insertion(predict, images, maps, targets)
        debiased = road(predict, images, maps, targets) if images.ndim == 4 else {"road_morf": None, "road_lerf": None}
        explanation_rows.append([method, len(lesion), local["iou_mean"], local["pointing_game"],
                                 local["energy_pointing_game"], faithful["deletion_auc"], faithful["insertion_auc"],
                                 debiased["road_morf"], debiased["road_lerf"]])
    # Checks that need no mask, on the first images of the split (the same for every method).
    sample = np.arange(min(diagnose_images, len(data["image"])))
    predicted = probabilities[sample].argmax(-1)
    diagnostics = {name: diagnose(model, make, data["image"][sample], predicted) for name, make in makers.items()} \
        if len(sample) > 1 else {}
    audit = None
    if os.path.exists(os.path.join(eval_dir, "audit.json")):
        with open(os.path.join(eval_dir, "audit.json"), encoding="utf-8") as stream:
            audit = json.load(stream)

    galleries = {}
    for kind, cases in gallery_cases(labels, probabilities, multi_label, threshold, per_gallery).items():
        if not cases:
            galleries[kind] = None
            continue
        indices = np.array([c[0] for c in cases])
        targets = np.array([c[1] for c in cases])
        maps = {method: explainer(data["image"][indices], targets) for method, explainer in explainers.items()}
        truth = [",".join(n for n, v in zip(names, data["label"][i]) if v > 0.5) or "none" for i in indices]
        captions = [f"#{i} true={t}\nexplained {names[c]}, p={p:.2f}" for (i, c, p), t in zip(cases, truth)]
        draw = volume_gallery_png if data["image"].ndim == 5 else _gallery_png  # volumes: planes through each peak
        galleries[kind] = _data_uri(draw(data["image"][indices], data["mask"][indices], maps, captions))

    path = out or run.paths.report
    page = _page(run_dir, split, config, manifest, metrics, calibration, explanation_rows, galleries, eval_dir,
                 threshold, methods)
    page = page.replace("<!--diagnostics-->", _diagnostics_section(diagnostics, choice, len(sample)) +
                        _audit_section(audit) + reader_study_section(eval_dir))
    write_text_atomic(page, path)
    return path


STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.5em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0}
td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left;font-size:.9em}
th{background:#f3f3f3}.figures{display:flex;flex-wrap:wrap;gap:1em}.figures img{width:330px}
img.gallery{max-width:100%}pre{background:#f7f7f7;padding:.8em;overflow:auto;font-size:.8em;max-height:24em}
.note{color:#666;font-size:.85em}.warning{background:#fff3cd;border:1px solid #e0c060;padding:.5em}"""

# Marks the page once every embedded image has decoded (a broken one is listed), for people and tests.
CHECK_IMAGES = """window.addEventListener('load',function(){var imgs=document.images,ok=0,bad=[];
for(var i=0;i<imgs.length;i++){if(imgs[i].complete&&imgs[i].naturalWidth>0){ok++}else{bad.push(imgs[i].alt)}}
document.body.setAttribute('data-images-loaded',ok);document.body.setAttribute('data-images-total',imgs.length);
if(bad.length){var p=document.createElement('p');p.textContent='Images that failed to load: '+bad.join(', ');
p.className='note';document.body.prepend(p)}});"""


def _calibration_note(calibration: dict | None) -> str:
    """One sentence: how the report's probabilities were calibrated (tfxmed.calibration)."""
    if not calibration or calibration["method"] == "none":
        reason = (calibration or {}).get("reason", "no calibration recorded")
        return f'<p class="note">Probabilities are the model\'s own (uncalibrated: {html.escape(reason)}).</p>'
    if calibration["method"] == "temperature":
        how = f"temperature scaling, T = {calibration['temperature']:.3f}"
    elif calibration.get("of") == "logit difference":
        how = (f"Platt scaling of the logit difference, a = {calibration['scale'][1]:.3f}, "
               f"b = {calibration['bias'][1]:+.3f}")
    else:
        how = "per-label Platt scaling"
    return (f'<p class="note">Probabilities are calibrated by {how}, fitted on {html.escape(calibration["fitted_on"])}'
            " (AUC unchanged: the scaling keeps each score's order).</p>")


def _page(run_dir, split, config, manifest, metrics, calibration, explanation_rows, galleries, eval_dir, threshold,
          methods) -> str:
    report = metrics["classification"]
    names = manifest["class_names"]
    parts = [f"<h1>tfxmed report — {html.escape(config.name)} ({html.escape(split)} split)</h1>",
             f'<p class="note">Run folder {html.escape(os.path.abspath(run_dir))}; {report["num_examples"]} '
             f"{html.escape(split)} images; classes {html.escape(', '.join(names))}.</p>"]
    parts.append('<section id="config"><h2>Run configuration</h2>'
                 f"<pre>{html.escape(yaml.safe_dump(to_dict(config), sort_keys=False))}</pre></section>")
    diagnostic = [f'<section id="diagnostics"><h2>Diagnostic metrics</h2><p class="note">Decision threshold '
                  f"{report['threshold']}; AUC 95% CI: bootstrap over images.</p>",
                  _table(["metric", "value", "95% CI"], _diagnostic_rows(report, names), "diagnostic-table")]
    validated = metrics.get("classification_at_validation_threshold")
    if validated:
        diagnostic.append(f"<h3>At the threshold chosen on validation ({html.escape(validated['method'])}: "
                          f"{validated['threshold']:.3f})</h3>")
        diagnostic.append(_table(["metric", "value", "95% CI"], _diagnostic_rows(validated["report"], names)))
    diagnostic.append(_calibration_note(metrics.get("calibration")))
    before = (metrics.get("calibration") or {}).get("before") or {}
    diagnostic.append(_table(["class", "Brier", "ECE", "Brier (uncalibrated)", "ECE (uncalibrated)",
                              "average precision"],
                             [[n, c["brier"], c["ece"], before.get(n, {}).get("brier"), before.get(n, {}).get("ece"),
                               c["average_precision"]] for n, c in calibration.items()],
                             "calibration-table"))
    parts.append("".join(diagnostic) + "</section>")
    figures = [(title, _file_uri(os.path.join(eval_dir, file))) for title, file in (
        ("ROC", "roc.png"), ("Precision-recall", "precision_recall.png"), ("Calibration", "calibration.png"),
        ("Confusion matrix", "confusion_matrix.png"))]
    parts.append('<section id="curves"><h2>Curves</h2><div class="figures">' + "".join(
        f'<figure><img alt="{title}" src="{uri}"><figcaption>{title}</figcaption></figure>'
        for title, uri in figures if uri) + "</div></section>")
    explanation = ['<section id="explanations"><h2>Explanation metrics per method</h2>']
    if explanation_rows:
        header = ["method", "images", "IoU", "pointing game", "energy pointing", "deletion AUC ↓", "insertion AUC ↑",
                  "ROAD MoRF ↓", "ROAD LeRF ↑"]
        explanation.append(_table(header, explanation_rows, "explanation-table"))
        explanation.append(f'<p class="note">Images with a ground-truth mask, true class explained; binarisation '
                           f"{html.escape(config.explain.binarize)} {config.explain.binarize_value}; pointing "
                           f"tolerance {config.explain.pointing_tolerance} px; deletion/insertion: RISE, zero baseline "
                           "/ blurred start; ROAD: mean target probability over 10–90% removed, noisy linear "
                           "imputation.</p>")
    else:
        explanation.append('<p class="note">This split has no ground-truth masks: localisation metrics need them.</p>')
    parts.append("".join(explanation) + "</section><!--diagnostics-->")
    for kind, title in GALLERIES:
        uri = galleries.get(kind)
        body = (f'<img class="gallery" alt="{title}" src="{uri}">' if uri else '<p class="note">No such cases.</p>')
        parts.append(f'<section id="gallery-{kind}"><h2>{title}</h2><p class="note">Most confident first; decision '
                     f"threshold {threshold:.3f}; columns: image, ground truth (red), "
                     f"{html.escape(', '.join(methods))}.</p>{body}</section>")
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f"<title>tfxmed report — {html.escape(config.name)}"
            f"</title><style>{STYLE}</style><script>{CHECK_IMAGES}</script></head><body>{''.join(parts)}</body></html>")


def _diagnostics_section(diagnostics: dict, choice, count: int) -> str:
    """Map specificity, stability and the randomisation check per method, with warnings."""
    if not diagnostics:
        return ""
    rows, warnings = [], []
    for name, result in diagnostics.items():
        rows.append([name, result["specificity"], result["mean_correlation_with_mean_map"], result["max_sensitivity"],
                     result["spearman_logits_randomized"], result["spearman_all_randomized"]])
        if result["near_constant"]:
            warnings.append(f'<p class="warning" data-method="{html.escape(name)}">⚠ {html.escape(name)}: the maps '
                            f"are near-constant (mean correlation {result['mean_correlation_with_mean_map']:.2f} with "
                            "the mean map over these images): they show where the model looks on every image, not on "
                            "this one. Do not read them as per-image evidence.</p>")
    header = ["method", "specificity ↑", "corr. with mean map ↓", "max-sensitivity ↓", "Spearman, logits randomised",
              "Spearman, all randomised ↓"]
    return ('<section id="explanation-diagnostics"><h2>Explanation diagnostics</h2>'
            f'<p class="note">Default explanation: {html.escape(choice.name)} ({html.escape(choice.chosen_by)}). '
            f"On the first {count} images of the split, predicted class explained. Specificity: 1 − mean Pearson "
            "correlation of each map with the mean map. Max-sensitivity (Yeh et al., 2019): largest relative change "
            "of the map under uniform noise of ±0.02. Cascading randomisation (Adebayo et al., 2018): rank "
            "correlation with the trained model's maps once the layers down to the logits / all layers are "
            "re-initialised — a method that explains the model drifts towards 0.</p>"
            + "".join(warnings) + _table(header, rows, "explanation-diagnostics-table") + "</section>")


def _audit_section(audit: dict | None) -> str:
    """The shortcut audit (`python -m tfxmed audit`), when the run has one."""
    if not audit:
        return ""
    rows = [[name, m["threshold"], m["threshold_chosen_by"], m["recall"], m["precision"], m["flag_rate"],
             m.get("false_alarm_rate"), m.get("flag_rate_without_cue"), m["mean_mass"]["cue"], m["mean_mass"]["lesion"]]
            for name, m in audit["methods"].items()]
    header = ["method", "threshold", "chosen by", "flag recall", "flag precision", "flag rate",
              "false alarms (not cue-driven)", "flag rate without cue", "mass on cue", "mass on lesion"]
    galleries = "".join(f'<figure><img class="gallery" alt="flagged by {html.escape(name)}" src="{uri}"><figcaption>'
                        f"Flagged by {html.escape(name)}</figcaption></figure>"
                        for name, m in audit["methods"].items() if (uri := _file_uri(m.get("gallery", ""))))
    return ('<section id="shortcut-audit"><h2>Shortcut audit</h2>'
            f'<p class="note">{audit["images_with_cue"]} of {audit.get("images", "the")} {html.escape(audit["split"])} '
            "images carry the spurious cue; "
            f"removing it (inpainting) changes the decision on {audit['shortcut_driven']} of them. AUC with the cue "
            f"{_number(audit.get('auc_with_cue'))}, without {_number(audit.get('auc_without_cue'))}. An image is "
            "flagged when its explanation puts more than the threshold of its mass on the cue (on an image without "
            "the cue: on the place where it sits on the others).</p>"
            + _table(header, rows, "audit-table") + galleries + "</section>")


def reader_study_section(eval_dir: str) -> str:
    """The reader study's section (`python -m tfxmed study results` writes it into RUN/eval/), or ""."""
    from tfxmed.reader_study.analysis import SECTION_FILE

    path = os.path.join(eval_dir, SECTION_FILE)
    if not os.path.exists(path):
        return ""
    with open(path, encoding="utf-8") as stream:
        return stream.read()


def _number(value) -> str:
    return "–" if value is None else f"{value:.3f}"
