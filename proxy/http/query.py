"""The variant a request asks for: its query, signature-checked when signing is on, with
client hints applied, validated against the allow-list (or the signed hard caps)."""

from __future__ import annotations

from starlette.requests import Request

from proxy.http.errors import ApiError
from proxy.http.hints import Hints, with_hints
from proxy.signing import SIGNATURE_PARAM, verify
from proxy.variants import VariantRequest, parse_query


def variant_request(request: Request, image: str, hints: Hints) -> VariantRequest:
    """The validated request; with signing on, only after its signature checks out (else 403).

    The signature covers the URL as written (`dpr=auto`); the hint only picks a value
    from the allow-list, so a signed URL cannot be stretched past it by a header.
    """
    settings = request.app.state.settings
    items = request.query_params.multi_items()
    security = settings.security
    if not security.signing:
        return parse_query(with_hints(items, hints, settings.variants), settings.variants)
    given = [value for name, value in items if name == SIGNATURE_PARAM]
    params = [(name, value) for name, value in items if name != SIGNATURE_PARAM]
    if len(given) != 1 or not verify(security.signing_keys, image, params, given[0]):
        raise ApiError(
            403,
            "bad_signature",
            "this URL needs a valid signature (s=); sign it with `python -m proxy sign URL` or proxy.signing.sign_url",
        )
    return parse_query(with_hints(params, hints, settings.variants), settings.variants, security)
