"""Where the project's checkout is: the one anchor for its folders (conf/, data/, templates/, ...)."""

from pathlib import Path

#: The checkout root (the folder with pyproject.toml and conf/); this file is src/covertype/paths.py.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
