"""Dataset converters into tfxmed's sharded TFRecord format (`python -m tfrecords_tools.convert`)."""

from tfrecords_tools.writer import MANIFEST_NAME, DatasetWriter, hash_patient_id, load_manifest

__all__ = ["DatasetWriter", "MANIFEST_NAME", "hash_patient_id", "load_manifest"]
