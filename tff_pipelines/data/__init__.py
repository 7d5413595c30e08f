"""Datasets, their federated split, and per-round client sampling (NumPy only, no TF)."""

from tff_pipelines.data.dataset import Dataset
from tff_pipelines.data.errors import DataError
from tff_pipelines.data.federated import FederatedData, build_federated_data
from tff_pipelines.data.partition import PARTITIONS
from tff_pipelines.data.sampling import SAMPLING_KINDS, ClientSampler
from tff_pipelines.data.sources import SOURCES, load_source
from tff_pipelines.data.standardize import Standardizer

__all__ = [
    "PARTITIONS",
    "SAMPLING_KINDS",
    "SOURCES",
    "ClientSampler",
    "DataError",
    "Dataset",
    "FederatedData",
    "Standardizer",
    "build_federated_data",
    "load_source",
]
