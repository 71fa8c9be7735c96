"""Data for training: the Dataset container, generated sets, bundled files, CSV import, the
data table kept in a graph file and image folders."""

from engine.data.csv_import import apply_preprocessing, csv_preview, load_csv
from engine.data.dataset import Dataset, batches, fit_to_input
from engine.data.generated import DATASETS, DatasetInfo, make_dataset
from engine.data.images import load_image_folder
from engine.data.table import load_table

__all__ = ["DATASETS", "Dataset", "DatasetInfo", "apply_preprocessing", "batches",
           "csv_preview", "fit_to_input", "load_csv", "load_image_folder", "load_table",
           "make_dataset"]
