"""xplique's Deletion / Insertion on the inputs and maps scripts/benchmark_metrics.py saved (run by it).

Runs under a separate Python whose TensorFlow xplique accepts (xplique 2.0.2 pins tensorflow<=2.20).
Prints one JSON line: metric → value and seconds.
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from scipy import ndimage  # noqa: E402
from xplique.metrics import Deletion, Insertion  # noqa: E402

from tfxmed.models import layers as _registered  # noqa: E402,F401  (custom layers for loading)


def blurred(inputs):
    return ndimage.gaussian_filter(np.asarray(inputs, np.float32), sigma=(0, 5.0, 5.0, 0))


def main():
    model_path, arrays_path, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
    model = keras.saving.load_model(model_path)  # outputs probabilities: f(x)[y] is the target probability
    arrays = np.load(arrays_path)
    images, maps, targets = arrays["images"], arrays["maps"], arrays["targets"]
    results = {}
    for name, metric_class, baseline in (("deletion", Deletion, 0.0), ("insertion", Insertion, blurred)):
        metric = metric_class(model, images, targets, batch_size=128, baseline_mode=baseline, steps=steps)
        metric.evaluate(maps)  # warm-up: tracing and first calls are not timed
        started = time.perf_counter()
        value = float(metric.evaluate(maps))
        results[name] = {"auc": value, "seconds": time.perf_counter() - started}
    print(json.dumps(results))


if __name__ == "__main__":
    main()
