"""tfxmed.config_rules: the rules that tie keys together, refused at load with the key, the value and what the
other keys allow, and checked on the merged configuration (file and overrides), not on the file alone."""

import pytest

from tests.helpers import TINY_CONFIG
from tfxmed.config import ConfigError, load_config


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["model.small_cnn.blocks=[1, 0]"], r"model\.small_cnn\.blocks\[1\]: must be >= 1, got 0"),
        (["model.small_cnn.blocks=[]"], r"model\.small_cnn\.blocks: expected a list of >= 1 items, got \[\]"),
        (["model.resnet50_attention.blocks=[1, 1]"], r"model\.resnet50_attention\.blocks: expected a list of 4 items"),
        (["data.cv_folds=5", "data.cv_fold=5"], r"data\.cv_fold: must be in \[0, 5\) with data\.cv_folds=5, got 5"),
        (["data.cv_folds=5"], r"data\.cv_fold: must be in \[0, 5\) .* got -1"),
        (["data.cv_folds=1", "data.cv_fold=0"], r"data\.cv_folds: must be 0 .* or >= 2, got 1"),
        (["data.cv_fold=2"], r"data\.cv_fold: must stay -1 without data\.cv_folds"),
        (["data.source=tfrecords"], r"data\.tfrecord_dir: data\.source=tfrecords needs"),
        (["data.augment_backend=albumentations", "runtime.strategy=tpu"],
         r"data\.augment_backend: 'albumentations'.*tpu"),
        (["model.name=small_cnn", "model.small_cnn.blocks=[1, 1, 1, 1, 1]", "data.image_size=8"],
         r"data\.image_size: must be >= 16 for model\.small_cnn\.blocks=\[1, 1, 1, 1, 1\], got 8"),
        (["model.weights=imagenet", "model.resnet50_attention.width=32"], r"model\.weights: 'imagenet' needs"),
        (["model.name=small_cnn", "model.weights=imagenet"], r"model\.weights: 'imagenet' has no weights.*small_cnn"),
        (["model.name=vgg16", "data.image_size=16"], r"data\.image_size: keras\.applications' vgg16 needs >= 32 px"),
    ],
)
def test_values_outside_list_lengths_and_cross_key_rules_are_refused(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides)


def test_rules_across_keys_apply_to_the_merged_config_not_to_the_file_alone(tmp_path):
    path = tmp_path / "fold.yaml"
    path.write_text("data:\n  cv_fold: 2\n")
    assert load_config(path, ["data.cv_folds=5"]).data.cv_fold == 2


# runtime.jit_compile and train.profile_batches (issue 17 §2, §6): checked when the config loads.
@pytest.mark.parametrize("override, message", [
    ("runtime.jit_compile=1", r"runtime\.jit_compile: 1 is not allowed; choose one of auto, true, false"),
    ("runtime.jit_compile=maybe", r"runtime\.jit_compile: 'maybe' is not allowed; choose one of auto, true, false"),
    ("train.profile_batches=20,10", r"train\.profile_batches: expected '' \(off\), 'N' or 'start,stop'"),
    ("train.profile_batches=0", r"train\.profile_batches: .* got '0'"),
])
def test_jit_compile_and_profile_batches_are_checked_at_load(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(TINY_CONFIG, [override])


def test_jit_compile_values_load():
    assert load_config(TINY_CONFIG).runtime.jit_compile == "auto"
    assert load_config(TINY_CONFIG, ["runtime.jit_compile=true"]).runtime.jit_compile is True
    assert load_config(TINY_CONFIG, ["runtime.jit_compile=false"]).runtime.jit_compile is False
    assert load_config(TINY_CONFIG, ["train.profile_batches=10,20"]).train.profile_batches == "10,20"


@pytest.mark.parametrize("overrides, message", [
    (["runtime.strategy=tpu", "runtime.jit_compile=false"], r"runtime\.jit_compile: false is impossible with "
                                                            r"runtime\.strategy=tpu"),
    (["runtime.jit_compile=true", "explain.method=lime"], r"explain\.method: 'lime' fits a surrogate per image on "
                                                          r"the host .* which runtime\.jit_compile=true needs"),
    (["runtime.strategy=tpu", "explain.method=kernelshap"], r"explain\.method: 'kernelshap' .* which "
                                                            r"runtime\.strategy=tpu needs"),
])
def test_what_cannot_compile_with_xla_is_refused_at_load(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(TINY_CONFIG, overrides)
