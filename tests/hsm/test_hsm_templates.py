"""Key templates write every usage flag out, so a module's defaults never grant one."""

from __future__ import annotations

import pytest
from pkcs11 import Attribute

from hsm.templates import (
    PUBLIC_KEY_USAGES,
    SECRET_KEY_USAGES,
    private_key_template,
    public_key_template,
    secret_key_template,
    usages,
)


def test_a_secret_key_has_only_the_usages_it_is_given() -> None:
    t = secret_key_template(may=(Attribute.DERIVE,), label="master", key_id=b"\x01")
    assert t[Attribute.SENSITIVE] is True and t[Attribute.EXTRACTABLE] is False
    assert t[Attribute.TOKEN] is True and t[Attribute.PRIVATE] is True
    assert {u for u in SECRET_KEY_USAGES if t[u]} == {Attribute.DERIVE}
    assert all(u in t for u in SECRET_KEY_USAGES)
    assert t[Attribute.LABEL] == "master" and t[Attribute.ID] == b"\x01"


def test_a_session_key_is_not_a_token_object_and_has_no_name() -> None:
    t = secret_key_template(may=(Attribute.VERIFY,), token=False)
    assert t[Attribute.TOKEN] is False
    assert Attribute.PRIVATE not in t and Attribute.LABEL not in t and Attribute.ID not in t
    assert {u for u in SECRET_KEY_USAGES if t[u]} == {Attribute.VERIFY}


def test_key_pair_halves_only_sign_and_only_verify() -> None:
    private = private_key_template("ca", b"\x02")
    public = public_key_template("ca", b"\x02")
    assert private[Attribute.SIGN] is True and private[Attribute.EXTRACTABLE] is False
    assert not any(private[u] for u in (Attribute.DECRYPT, Attribute.UNWRAP, Attribute.DERIVE))
    assert public[Attribute.VERIFY] is True and public[Attribute.PRIVATE] is False
    assert not any(public[u] for u in (Attribute.ENCRYPT, Attribute.WRAP))


def test_a_usage_the_kind_of_key_cannot_have_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot have"):
        usages(PUBLIC_KEY_USAGES, (Attribute.SIGN,))
