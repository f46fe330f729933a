"""Where aecls finds its own files: the model configs (configs/<name>.yaml)."""

from __future__ import annotations

from pathlib import Path

from aecls.errors import AeclsError

# The repository's configs/ (an editable install runs from the checkout).
REPO_CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def find_config(name_or_path: str | Path) -> Path:
    """A model config by path, or by name: ./configs/NAME.yaml, then the repository's."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        candidates = [path]
    else:
        candidates = [Path("configs") / f"{path}.yaml", REPO_CONFIGS / f"{path}.yaml"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise AeclsError(f"model config not found: {' or '.join(map(str, candidates))}")
