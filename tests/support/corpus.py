"""The shared image corpus (../shared/corpus, or RESIZE_PROXY_CORPUS): where it is and what MANIFEST.tsv lists."""

from __future__ import annotations

import csv
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CORPUS = Path(os.environ.get("RESIZE_PROXY_CORPUS", REPO.parent / "shared" / "corpus"))
ARTIFACTS = REPO / "test-artifacts"


def corpus_rows() -> list[dict[str, str]]:
    """MANIFEST.tsv rows, or [] when the corpus is absent (tests using it then skip)."""
    manifest = CORPUS / "MANIFEST.tsv"
    if not manifest.is_file():
        return []
    with manifest.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def corpus_files(folder: str) -> list[str]:
    return sorted(r["path"] for r in corpus_rows() if r["path"].startswith(folder + "/"))
