"""Write the reference pages from their sources at every docs build (mkdocs-gen-files runs this).

Nothing here is typed twice: the settings come from ``covertype.config.Settings``, the catalog from
``conf/``, the HTTP APIs from the apps' own OpenAPI documents, the commands from the entry points'
parsers and the Makefile, the metrics from the service's metric objects, the benchmark figures from
``benchmarks/results/*.json``. The page texts around them are in ``docs/_generate/pages.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import mkdocs_gen_files

sys.path.insert(0, str(Path(__file__).parent))

import render  # docs/_generate is not a package: it is put on the path above

for page, text in render.reference_pages().items():
    with mkdocs_gen_files.open(page, "w") as handle:
        handle.write(text)
for page, document in render.openapi_documents().items():
    with mkdocs_gen_files.open(page, "w") as handle:
        handle.write(document)
