"""proxy.service without a store: what the metadata record says about references."""

from __future__ import annotations

import json

from proxy.service import ImageMeta

FIELDS = {"id": "0" * 32, "width": 640, "height": 400, "format": "jpeg", "bytes": 1, "frames": 1,
          "has_alpha": False, "created": 1.5}


def test_metadata_written_before_references_reads_as_legacy() -> None:
    """The version before references wrote no `legacy` field: such an image is legacy (README: Migration)."""
    assert ImageMeta.from_json(json.dumps(FIELDS | {"work": [[480, 300]]}).encode()).legacy is True


def test_new_metadata_is_not_legacy_and_round_trips() -> None:
    meta = ImageMeta(**FIELDS, work=((480, 300),))
    assert meta.legacy is False and ImageMeta.from_json(meta.to_json()) == meta
