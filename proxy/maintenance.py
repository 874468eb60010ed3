"""Maintenance run from the CLI straight against the store: garbage-collect variants.

`gc` keeps exactly the variants the current config can still produce and
drops the rest: sizes, formats or qualities taken off the allow-list, the other
kind after render.animation was switched, and variants of images whose
metadata is gone. The allowed set is enumerated through the same code the
service uses for requests (parse_query -> plan -> keys.variant_name), so the two can
never disagree. Variants made for signed off-list URLs are dropped too; they
render again on demand.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from proxy import keys
from proxy.config import Settings
from proxy.imaging.render import default_quality
from proxy.service import ImageMeta, is_animated, pad_colour, plan_request
from proxy.storage import Store
from proxy.variants import parse_query


# The fits listed for every size. Gravities, focal points, crop boxes and pads are too many to list
# (see Crops in the README): gc drops those variants unless a preset makes them; they render again.
LISTED_FITS = ("inside", "cover")


@dataclass
class GcReport:
    images: int = 0
    kept: int = 0
    dropped: list[str] = field(default_factory=list)


def _requests(settings: Settings) -> list[list[tuple[str, str]]]:
    """Every size request the allow-list admits, as query pairs (format and quality vary separately)."""
    v = settings.variants
    sizes: list[list[tuple[str, str]]] = [[]]
    for w, h in itertools.product([None, *v.widths], [None, *v.heights]):
        pairs = [(name, str(value)) for name, value in (("w", w), ("h", h)) if value is not None]
        sizes += [pairs + [("fit", fit)] for fit in LISTED_FITS] if pairs else []
    sizes += [[("p", name)] for name in v.presets]
    return [size + ([("dpr", f"{d:g}")] if d != 1 else []) for size in sizes for d in v.dprs]


def allowed_names(meta: ImageMeta, settings: Settings, requests: list[list[tuple[str, str]]]) -> set[str]:
    """The names of every variant of `meta` that the current config can still produce."""
    v = settings.variants
    parsed = [parse_query(pairs, v) for pairs in requests]
    names = set()
    for fmt in v.formats:
        geometries = {plan_request(meta, r, meta.focus, pad_colour(r, fmt, settings.render)) for r in parsed}
        default = default_quality(settings.encoders, fmt)
        animated = is_animated(settings, meta, fmt)
        names |= {keys.variant_name(g, fmt, q, animated) for g in geometries for q in {default, *v.qualities}}
        if not animated:  # q=auto at the configured target
            names |= {keys.variant_name(g, fmt, default, False, settings.encoders.auto_target) for g in geometries}
    return names


async def collect_garbage(settings: Settings, store: Store, dry_run: bool = False) -> GcReport:
    report = GcReport()
    requests = _requests(settings)
    by_image: dict[str, list[str]] = {}
    for key in await store.list_keys(keys.VARIANTS):
        image_id, name = keys.parse_variant(key)
        by_image.setdefault(image_id, []).append(name)
    for image_id, names in sorted(by_image.items()):
        raw = await store.get(keys.metadata(image_id))
        allowed = allowed_names(ImageMeta.from_json(raw), settings, requests) if raw is not None else set()
        report.images += 1
        for name in names:
            if name in allowed:
                report.kept += 1
                continue
            key = keys.variant(image_id, name)
            report.dropped.append(key)
            if not dry_run:
                await store.delete(key)
    return report
