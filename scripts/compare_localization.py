"""Localisation of several explainers / layers on one trained run, as JSON (exploration, not a benchmark).

    python scripts/compare_localization.py --run runs/quickstart --split val

For every `method[@layer][{key=value,...}]` spec: IoU (maps binarised at 0.5 × max), pointing game
(with the run's tolerance) and energy pointing game against the lesion masks of the split's lesion
images. Options are the explainer's keyword arguments, e.g.
`ig{baseline=blurred,blur_sigma=2,steps=16,smoothing_sigma=1.5}`. Pick layers and methods on `val`;
look at `test` once.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


from tfxmed.data.selection import has_lesion  # noqa: E402
from tfxmed.evaluation import collect_split  # noqa: E402
from tfxmed.explain import make_explainer  # noqa: E402
from tfxmed.metrics.localization import localization_summary  # noqa: E402
from tfxmed.runs import load_run  # noqa: E402

DEFAULT_SPECS = (
    "gradcam", "gradcam@conv4_block6_out", "gradcam@conv3_block4_out", "gradcam@conv2_block3_out",
    "gradcampp", "layercam@conv3_block4_out", "saliency", "ig",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True)
    parser.add_argument("--split", default="val")
    parser.add_argument("--specs", default=",".join(DEFAULT_SPECS), help="comma-separated method[@layer]")
    args = parser.parse_args()
    run = load_run(args.run)
    config, manifest, data_dir, model = run.config, run.manifest, run.data_dir, run.model
    data = collect_split(data_dir, manifest, config, args.split)
    lesion = has_lesion(data["mask"], data["has_mask"])
    images, targets, masks = data["image"][lesion], data["label"][lesion], data["mask"][lesion] > 0.5
    results = {"run": args.run, "split": args.split, "images": int(lesion.sum()),
               "lesion_area_fraction": float(masks.mean()), "methods": {}}
    for spec in _split_specs(args.specs):
        name, _, options = spec.partition("{")
        method, _, layer = name.partition("@")
        options = dict(item.split("=", 1) for item in options.rstrip("}").split(",") if item)
        options = {key: _value(value) for key, value in options.items()}
        explainer = make_explainer(method, model, **({"layer": layer} if layer else {}), **options)
        summary = localization_summary(explainer(images, targets), masks, "fraction_of_max", 0.5,
                                       config.explain.pointing_tolerance)
        results["methods"][spec] = {key: summary[key] for key in ("iou_mean", "pointing_game", "energy_pointing_game")}
    print(json.dumps(results, indent=1))


def _split_specs(text: str) -> list[str]:
    """Commas separate specs, except inside {...}."""
    specs, depth, current = [], 0, ""
    for character in text:
        depth += {"{": 1, "}": -1}.get(character, 0)
        if character == "," and depth == 0:
            specs.append(current)
            current = ""
        else:
            current += character
    return [spec for spec in (*specs, current) if spec]


def _value(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


if __name__ == "__main__":
    main()
