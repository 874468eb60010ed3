"""proxy.http.upload helpers that need no server: the Idempotency-Key header."""

from __future__ import annotations

import pytest

from proxy.http.errors import ApiError
from proxy.http.upload import MAX_KEY_LENGTH, parse_idempotency_key


def test_keys_are_read_quoted_as_the_draft_writes_them_or_bare() -> None:
    assert parse_idempotency_key([]) is None
    assert parse_idempotency_key(['"8e03978e-40d5-43e8-bc93-6894a57f9324"']) == "8e03978e-40d5-43e8-bc93-6894a57f9324"
    assert parse_idempotency_key(["8e03978e-40d5-43e8-bc93-6894a57f9324"]) == "8e03978e-40d5-43e8-bc93-6894a57f9324"
    assert parse_idempotency_key(['"a b"']) == "a b"  # an sf-string may hold spaces
    assert parse_idempotency_key([r'"say \"hi\" \\ bye"']) == 'say "hi" \\ bye'
    assert parse_idempotency_key([" padded "]) == "padded"
    assert parse_idempotency_key(["k" * MAX_KEY_LENGTH]) == "k" * MAX_KEY_LENGTH


@pytest.mark.parametrize(
    "values",
    [[""], ['""'], ["a b"], ['"open'], ['"bad \\x escape"'], ["é"], ["k" * (MAX_KEY_LENGTH + 1)], ["one", "two"]],
)
def test_anything_else_is_a_400(values: list[str]) -> None:
    with pytest.raises(ApiError) as err:
        parse_idempotency_key(values)
    assert (err.value.status, err.value.code) == (400, "bad_idempotency_key")
