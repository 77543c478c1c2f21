
import keras
import numpy as np
import pytest

from tfxmed.models import attention_model, default_explain_layer, logits_model
from tfxmed.models.resnet_attention import _bottleneck, resnet_attention


@pytest.fixture(scope="module")
def resnet():
    return resnet_attention((32, 32, 1), 2)


def test_resnet50_structure_and_attention_placement(resnet):
    names = [layer.name for layer in resnet.layers]
    assert sum(n.endswith("_out") and n.startswith("conv") for n in names) == 16  # 3 + 4 + 6 + 3 blocks
    # CSAM sits between the last block of stage 3 and the first of stage 4.
    assert names.index("conv4_block6_out") < names.index("csam") < names.index("conv5_block1_1_conv")
    assert resnet.get_layer("dropout").rate == pytest.approx(0.3)
    assert resnet.output.shape == (None, 2)
    assert default_explain_layer(resnet) == "csam"


def test_outputs_are_probabilities_and_logits_view_matches(resnet, rng):
    x = rng.normal(size=(2, 32, 32, 1)).astype("float32")
    probabilities = resnet.predict(x, verbose=0)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, rtol=1e-5)
    logits = logits_model(resnet).predict(x, verbose=0)
    np.testing.assert_allclose(keras.ops.softmax(logits).numpy(), probabilities, rtol=1e-4, atol=1e-6)
    attention = attention_model(resnet).predict(x, verbose=0)
    assert attention.shape == (2, 2, 2, 1) and np.all((attention > 0) & (attention < 1))


@pytest.mark.parametrize("downsample", ["stride", "avgpool"])
def test_a_strided_block_sees_the_last_row_and_column_only_when_it_average_pools(downsample, rng):
    # ResNet50's strided 1x1 convs sample rows and columns 0, 2, ..., so the last ones never reach the
    # next stage: the top-left border response survives and the bottom-right one is dropped.
    features = keras.Input((8, 8, 4))
    block = keras.Model(features, _bottleneck(features, 2, 2, True, "block", downsample))
    x = rng.normal(size=(1, 8, 8, 4)).astype("float32")
    corner = {"top_left": (0, 0), "bottom_right": (7, 7)}
    changed = {}
    for name, (row, column) in corner.items():
        nudged = x.copy()
        nudged[0, row, column] += 10.0
        changed[name] = not np.allclose(block(nudged), block(x))
    assert changed == {"top_left": True, "bottom_right": downsample == "avgpool"}
    assert block(x).shape == (1, 4, 4, 8)


def test_an_unknown_downsample_is_refused():
    with pytest.raises(ValueError, match="stride, avgpool; got 'dilate'"):
        resnet_attention((32, 32, 1), 2, blocks=(1, 1, 1, 1), width=4, downsample="dilate")
