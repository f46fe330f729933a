"""Data: IDX files -> validated arrays -> device-resident batches."""

from aecls.data.batches import DeviceBatches
from aecls.data.datamodule import FashionMNISTDataModule
from aecls.data.idx import read_idx, read_images, read_labels, write_idx
from aecls.data.locate import DATASETS, locate
from aecls.data.subsets import stratified_subset, train_val_split
from aecls.data.transforms import add_noise, augment

__all__ = ["DATASETS", "DeviceBatches", "FashionMNISTDataModule", "add_noise", "augment", "locate",
           "read_idx", "read_images", "read_labels", "stratified_subset", "train_val_split",
           "write_idx"]
