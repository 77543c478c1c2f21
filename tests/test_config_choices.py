"""tfxmed.config_choices: each allowed-value list has one home; where a TensorFlow module keeps its own tuple
(the configuration cannot import TensorFlow), the two are pinned equal here."""

from tfxmed import config, config_choices


def test_each_allowed_value_list_has_one_home():
    """config.py cannot import TensorFlow; where a list lives in a TF module, the two are pinned equal."""
    from tfrecords_tools import prepare
    from tfxmed import distribute
    from tfxmed.data import augment_albumentations, features
    from tfxmed.explain.registry import METHODS
    from tfxmed.metrics import localization
    from tfxmed.models import factory
    from tfxmed.training import loop, losses

    assert factory.MODEL_NAMES is config_choices.MODEL_NAMES  # imported from here
    assert prepare.SOURCES is config_choices.DATA_SOURCES
    assert augment_albumentations.AUGMENT_BACKENDS == config_choices.AUGMENT_BACKENDS
    assert features.ENCODINGS == config_choices.RECORD_ENCODINGS
    assert distribute.STRATEGIES == config_choices.STRATEGIES
    assert losses.DISTANCES == config_choices.DISTANCES
    assert localization.BINARIZE_METHODS == config_choices.BINARIZE_METHODS
    assert loop.MONITOR_MODES is config_choices.MONITOR_MODES  # imported from here
    assert config_choices.MONITORS == tuple(config_choices.MONITOR_MODES)  # each monitor has its direction
    assert set(config_choices.EXPLAIN_METHODS) == set(METHODS) | {"auto"}
    assert config.MODEL_NAMES is config_choices.MODEL_NAMES  # re-exported by the configuration, not copied


def test_host_side_methods_are_the_explainers_that_compute_outside_a_graph():
    from tfxmed.explain import METHODS

    host_side = {name for name, method in METHODS.items() if name != "fusion" and not method.in_graph}
    assert host_side == set(config_choices.HOST_SIDE_METHODS)
