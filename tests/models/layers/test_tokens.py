import keras
import numpy as np

from tfxmed.models.layers.tokens import ClassToken, GridToTokens, PositionEmbedding, TakeToken, TokensToGrid


def test_grid_and_tokens_are_inverse_views_and_round_trip_through_saving(rng, tmp_path):
    tokens = rng.normal(size=(2, 1 + 6, 5)).astype("float32")
    grid = TokensToGrid((2, 3))(tokens).numpy()
    assert grid.shape == (2, 2, 3, 5)
    np.testing.assert_array_equal(grid[:, 1, 2], tokens[:, 1 + 1 * 3 + 2])  # row-major patches, class token dropped
    np.testing.assert_array_equal(GridToTokens()([tokens, grid]).numpy(), tokens)
    np.testing.assert_array_equal(TakeToken(0)(tokens).numpy(), tokens[:, 0])
    inputs = keras.Input((6, 5))
    sequence = PositionEmbedding()(ClassToken()(inputs))
    model = keras.Model(inputs, GridToTokens()([sequence, TokensToGrid((2, 3))(sequence)]))
    assert model.output.shape == (None, 7, 5)
    model.save(tmp_path / "tokens.keras")
    loaded = keras.saving.load_model(tmp_path / "tokens.keras")
    np.testing.assert_allclose(loaded.predict(tokens[:, 1:], verbose=0), model.predict(tokens[:, 1:], verbose=0))
