"""Data for training: the Dataset container, generated sets, bundled files and CSV import."""

from engine.data.csv_import import apply_preprocessing, csv_preview, load_csv
from engine.data.dataset import Dataset, batches
from engine.data.generated import DATASETS, DatasetInfo, make_dataset

__all__ = ["DATASETS", "Dataset", "DatasetInfo", "apply_preprocessing", "batches",
           "csv_preview", "load_csv", "make_dataset"]
