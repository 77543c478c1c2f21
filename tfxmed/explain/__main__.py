"""`python -m tfxmed.explain --run DIR --methods gradcam,gradcampp,ig,lime,fusion --n 32`.

Explains the first N images of a split (lesion images first) with each method and writes overlays,
raw maps, TensorBoard images and an index into RUN/explanations/.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tfxmed.explain", description=__doc__)
    parser.add_argument("--run", required=True, help="run directory written by python -m tfxmed.train")
    parser.add_argument("--methods", default="gradcam,gradcampp,ig,lime,fusion")
    parser.add_argument("--n", type=int, default=32, help="images to explain")
    parser.add_argument("--split", default="test")
    parser.add_argument("--target", choices=("predicted", "true"), default="predicted")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--precision", choices=("float32", "bfloat16", "float16"), default="float32",
                        help="compute dtype of the explanation passes (bfloat16: fast on AMX CPUs, GPUs, TPUs)")
    parser.add_argument("--out", default=None, help="output folder (default: RUN/explanations)")
    args = parser.parse_args(argv)

    import numpy as np
    from tqdm import tqdm

    from tfxmed.evaluation import collect_split, load_run
    from tfxmed.explain import METHODS, make_explainer
    from tfxmed.explain.saving import save_explanations

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        print(f"error: unknown method(s) {unknown}; choose from {', '.join(METHODS)}", file=sys.stderr)
        return 2
    try:
        config, manifest, data_dir, model = load_run(args.run)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    data = collect_split(data_dir, manifest, config, args.split)
    lesion_area = data["mask"].reshape(len(data["mask"]), -1).sum(-1)
    indices = np.argsort(~(lesion_area > 0), kind="stable")[: args.n]  # lesion images first
    images = data["image"][indices]
    probabilities = model.predict(images, verbose=0)
    # "predicted" is fixed from the float32 probabilities shown in the captions, whatever --precision.
    targets = data["label"][indices] if args.target == "true" else probabilities
    if not manifest["multi_label"] or args.target == "predicted":
        targets = targets.argmax(-1)
    maps = {}
    for method in tqdm(methods, desc="explain", unit="method", file=sys.stderr):
        explainer = make_explainer(method, model, default_layer=config.explain.layer, batch_size=args.batch_size,
                                   precision=args.precision)
        maps[method] = explainer(images, targets)
    names = manifest["class_names"]
    captions = [
        f"#{i} true={names[int(np.argmax(data['label'][i]))]} p={probabilities[k].max():.2f}" for k, i in enumerate(indices)
    ]
    out = args.out or os.path.join(args.run, "explanations")
    save_explanations(out, images, maps, indices, captions, os.path.join(args.run, "tensorboard", "explanations"))
    print(json.dumps({"explanations": out, "methods": methods, "images": len(indices),
                      "index": os.path.join(out, "index.html")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
