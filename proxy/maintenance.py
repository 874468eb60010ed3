"""Maintenance run from the CLI straight against the store: gc, the reference listing, the migration.

`gc` keeps exactly the variants the current config can still produce and
drops the rest: sizes, formats or qualities taken off the allow-list, the other
kind after render.animation was switched, and variants of images whose
metadata is gone. The allowed set is enumerated through the same code the
service uses for requests (parse_query -> plan -> keys.variant_name), so the two can
never disagree. Variants made for signed off-list URLs are dropped too; they
render again on demand. It never removes an original, working copy, metadata or
reference, nor a variant of an image a reference holds while its metadata is missing
(an upload may be writing it): images that no reference holds are reported, not deleted.

`migrate_refs` gives each image stored before references existed one reference held by a
named token, by the upload protocol of proxy.service (reference first, then wait for deletes
in progress, then check the image), and then marks its metadata as no longer legacy.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from dataclasses import dataclass, field

from proxy import keys
from proxy.config import Settings
from proxy.imaging.render import default_quality
from proxy.references import Claim, Reference, References
from proxy.service import ImageMeta, is_animated, pad_colour, plan_request, read_meta, write_meta
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
    unreferenced: list[str] = field(default_factory=list)  # stored, no reference holds them: reported only
    legacy: list[str] = field(default_factory=list)  # stored before references, not migrated (see migrate_refs)


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


async def stored_images(store: Store) -> set[str]:
    """The id of every image whose metadata is stored."""
    return {image for image in map(keys.parse_metadata, await store.list_keys(keys.ORIGINALS)) if image}


async def all_references(store: Store) -> list[tuple[str, str, str]]:
    """(image id, owner, ref) of every reference in the store, sorted."""
    return sorted(keys.parse_reference(key) for key in await store.list_keys(keys.REFS))


async def collect_garbage(settings: Settings, store: Store, dry_run: bool = False) -> GcReport:
    report = GcReport()
    requests = _requests(settings)
    held = {image for image, _, _ in await all_references(store)}
    by_image: dict[str, list[str]] = {}
    for key in await store.list_keys(keys.VARIANTS):
        image_id, name = keys.parse_variant(key)
        by_image.setdefault(image_id, []).append(name)
    for image_id, names in sorted(by_image.items()):
        meta = await read_meta(store, image_id)
        report.images += 1
        if meta is None and image_id in held:
            report.kept += len(names)
            continue
        allowed = allowed_names(meta, settings, requests) if meta is not None else set()
        for name in names:
            if name in allowed:
                report.kept += 1
                continue
            key = keys.variant(image_id, name)
            report.dropped.append(key)
            if not dry_run:
                await store.delete(key)
    for image_id in sorted(await stored_images(store) - held):
        meta = await read_meta(store, image_id)
        if meta is not None:
            (report.legacy if meta.legacy else report.unreferenced).append(image_id)
    return report


async def migrate_refs(references: References, owner: str, dry_run: bool = False) -> list[str]:
    """Give every legacy image one reference held by `owner`; returns their ids.

    The reference's handle is derived from the image (as an Idempotency-Key's is), so a run
    that was cut off and is started again gives no image a second one.
    """
    store = references.store
    migrated = []
    for image_id in sorted(await stored_images(store)):
        meta = await read_meta(store, image_id)
        if meta is None or not meta.legacy:
            continue
        migrated.append(image_id)
        if dry_run:
            continue
        ref = Claim(owner, f"migrate-refs {image_id}").ref()
        await references.add(Reference(image_id, owner, ref, round(time.time(), 3)))
        await references.wait_for_deletes(image_id)
        meta = await read_meta(store, image_id)  # again: a delete may have taken it meanwhile
        if meta is None or not await store.exists(keys.original(image_id)):
            await references.remove(image_id, owner, ref)
            migrated.pop()
            continue
        await write_meta(store, dataclasses.replace(meta, legacy=False))
    return migrated
