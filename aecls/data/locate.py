"""Find the four IDX files of a dataset on disk (or, only when asked, download them with torchvision).

Search order (first hit wins): the `data_dir` argument, the AECLS_DATA environment variable,
torchvision's `./data/<Name>/raw` layout, Debian's package (`apt-get install dataset-fashion-mnist`),
and only with `download=True` torchvision's downloader. Each directory is tried as-is and in the
torchvision layout `<dir>/<Name>/raw`, so a torchvision root works as `data_dir` too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from aecls.core.errors import DataError

SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
ENV_VAR = "AECLS_DATA"
TORCHVISION_ROOT = Path("data")


@dataclass(frozen=True)
class DatasetSpec:
    name: str  # our name: the `dataset` argument
    torchvision_name: str  # torchvision's class and folder name
    classes: tuple[str, ...]
    system_dir: Path | None  # where a Debian package puts the files, if one exists


DATASETS = {
    "fashion_mnist": DatasetSpec(
        "fashion_mnist",
        "FashionMNIST",
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        Path("/usr/share/datasets/fashion-mnist"),
    ),
    # No package carries MNIST here: point data_dir (or AECLS_DATA) at its IDX files.
    "mnist": DatasetSpec("mnist", "MNIST", tuple(str(d) for d in range(10)), None),
}


def dataset_spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}")
    return DATASETS[name]


def _find_file(directory: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (directory / name).is_file():
            return directory / name
    return None


def files_in(directory: Path) -> dict[str, tuple[Path, Path]] | None:
    """{'train': (images, labels), 'test': (...)} if all four files are in `directory`, else None."""
    found = {}
    for split, stems in SPLIT_FILES.items():
        paths = tuple(_find_file(directory, s) for s in stems)
        if None in paths:
            return None
        found[split] = paths
    return found


def _candidates(spec: DatasetSpec, data_dir: str | Path | None) -> list[tuple[str, Path]]:
    dirs: list[tuple[str, Path]] = []
    if data_dir is not None:
        dirs.append(("data_dir argument", Path(data_dir)))
    elif os.environ.get(ENV_VAR):
        dirs.append((f"${ENV_VAR}", Path(os.environ[ENV_VAR])))
    out = []
    for why, d in dirs:
        out += [(why, d), (why, d / spec.torchvision_name / "raw")]
    if data_dir is None:
        out.append(("torchvision layout", TORCHVISION_ROOT / spec.torchvision_name / "raw"))
        if spec.system_dir is not None:
            out.append(("Debian package", spec.system_dir))
    return out


def locate(dataset: str = "fashion_mnist", data_dir: str | Path | None = None,
           download: bool = False) -> dict[str, tuple[Path, Path]]:
    """Paths of the four IDX files, or a DataError that says everywhere we looked and how to fix it.

    An explicit `data_dir` is not silently replaced by a system copy: if the user names a directory,
    the files must be there (or be downloaded there with `download=True`).
    """
    spec = dataset_spec(dataset)
    tried = _candidates(spec, data_dir)
    for _, directory in tried:
        if (found := files_in(directory)) is not None:
            return found
    if download:
        return _download(spec, Path(data_dir) if data_dir is not None else TORCHVISION_ROOT)
    looked = "; ".join(f"{d} ({why})" for why, d in tried)
    names = ", ".join(s + "[.gz]" for pair in SPLIT_FILES.values() for s in pair)
    hint = (
        "install them with `sudo apt-get install dataset-fashion-mnist`, "
        if spec.system_dir is not None else ""
    )
    raise DataError(
        f"{spec.name} IDX files not found (need {names}). Looked in: {looked}. Fix: {hint}"
        f"give the folder that holds them (data_dir), set {ENV_VAR}=DIR, "
        f"or use download=True (needs internet).",
        setting="data_dir",
    )


def _download(spec: DatasetSpec, root: Path) -> dict[str, tuple[Path, Path]]:
    """torchvision's own downloader, for users with internet; never used by the tests."""
    import torchvision.datasets as tvd

    try:
        getattr(tvd, spec.torchvision_name)(root=str(root), train=True, download=True)
        getattr(tvd, spec.torchvision_name)(root=str(root), train=False, download=True)
    except Exception as e:  # network errors come in many types; all mean the same to the user
        raise DataError(f"download of {spec.name} into {root} failed: {e}") from e
    found = files_in(root / spec.torchvision_name / "raw")
    if found is None:
        raise DataError(f"download of {spec.name} finished but files are missing in {root}")
    return found
