"""Data: the TFRecord schema, decoding, augmentation, the tf.data pipeline, the synthetic benchmark."""
