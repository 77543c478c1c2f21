"""The allowed values of the configuration's choice fields, one home each.

`tfxmed.config` declares its fields with these and re-exports them. tfxmed.models.factory and
tfrecords_tools.prepare import theirs from here. The other lists are implemented in modules that import
TensorFlow, which the configuration (imported by every command's parser) must not: they keep their tuple and
tests/test_config_choices.py pins it to this one.
"""

APPLICATIONS = ("densenet121", "efficientnetb0", "vgg16")  # keras.applications backbones (tfxmed.models.applications)
BRANCHES = ("resnet50_attention", "small_cnn", *APPLICATIONS)  # what `fusion` may fuse
VOLUME_MODELS = ("resnet3d", "cnn_rnn")  # for volumes [D, H, W, C] (tfxmed.models.resnet3d, tfxmed.models.cnn_rnn)
MODEL_NAMES = (*BRANCHES, "vit", "fusion", *VOLUME_MODELS)  # tfxmed.models.factory
VIT_SIZES = ("ti", "s", "b")  # tfxmed.models.vit
POOLINGS = ("avg", "max", "lse")  # global pooling before the logits (tfxmed.models.layers.pooling)
IG_BASELINES = ("zero", "blurred")  # train.consistency.ig_baseline
DOWNSAMPLES = ("stride", "avgpool")  # model.resnet50_attention.downsample
DATA_SOURCES = ("synthetic", "medmnist", "tfrecords", "synthetic_volumes")
AUGMENT_BACKENDS = ("tf", "albumentations")  # tfxmed.data.augment_albumentations
RECORD_ENCODINGS = ("auto", "raw", "png", "jpeg")  # tfxmed.data.features.ENCODINGS
STRATEGIES = ("cpu", "gpu", "mirrored", "multiworker", "tpu")  # tfxmed.distribute
JIT_COMPILE = ("auto", True, False)  # tfxmed.training.xla
# Explanation methods that fit a surrogate per image on the host (NumPy / scikit-learn): no XLA graph holds
# them (`in_graph = False` in tfxmed.explain; tests/test_config_choices.py pins the two lists together).
HOST_SIDE_METHODS = ("lime", "kernelshap")
DISTANCES = ("l1", "l2", "cosine")  # tfxmed.training.losses
CALIBRATION_METHODS = ("auto", "temperature", "platt", "none")  # tfxmed.calibration
# train.monitor → its direction: what picks the kept checkpoint and stops early (tfxmed.training.loop)
MONITOR_MODES = {"val_auc": "max", "val_loss": "min"}
MONITORS = tuple(MONITOR_MODES)
BINARIZE_METHODS = ("fraction_of_max", "top_fraction", "otsu")  # tfxmed.metrics.localization
# tfxmed.explain.registry.METHODS, plus "auto": the method and layer chosen on validation masks
EXPLAIN_METHODS = ("gradcam", "gradcampp", "xgradcam", "layercam", "hirescam", "eigencam", "eigengradcam", "scorecam",
                   "saliency", "smoothgrad", "ig", "occlusion", "lime", "kernelshap", "lrp", "rollout", "fusion",
                   "auto")
