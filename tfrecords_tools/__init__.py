"""Dataset converters into tfxmed's sharded TFRecord format (`python -m tfxmed convert`)."""

from tfrecords_tools.writer import DatasetWriter, hash_patient_id

__all__ = ["DatasetWriter", "hash_patient_id"]
