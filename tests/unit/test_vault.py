import base64
import secrets
from uuid import uuid4

import pytest

from engine.kernel.vault import SealBroken, Vault


def make_vault() -> Vault:
    return Vault(secrets.token_bytes(32))


def test_sealed_code_opens_to_the_same_code_and_pin():
    vault, code_id = make_vault(), uuid4()
    sealed = vault.seal_code(code_id, "  ABCD-1234 ", "9876")
    assert vault.open(code_id, sealed) == {"code": "ABCD-1234", "pin": "9876"}


def test_sealed_blob_does_not_contain_the_code():
    vault, code_id = make_vault(), uuid4()
    sealed = vault.seal_code(code_id, "SECRETCODE42", "PIN777")
    raw = base64.b64decode(sealed)
    assert b"SECRETCODE42" not in raw and b"PIN777" not in raw
    assert "SECRETCODE42" not in sealed


def test_seal_is_bound_to_its_code_id():
    vault = make_vault()
    sealed = vault.seal_code(uuid4(), "CODE", None)
    with pytest.raises(SealBroken):
        vault.open(uuid4(), sealed)


def test_another_key_cannot_open_a_seal():
    code_id = uuid4()
    sealed = make_vault().seal_code(code_id, "CODE", None)
    with pytest.raises(SealBroken):
        make_vault().open(code_id, sealed)


def test_fingerprint_is_keyed_and_ignores_surrounding_space():
    one, other = make_vault(), make_vault()
    assert one.fingerprint("CODE-1") == one.fingerprint(" CODE-1\n")
    assert one.fingerprint("CODE-1") != other.fingerprint("CODE-1")
    assert one.fingerprint("CODE-1") != one.fingerprint("CODE-2")


def test_fingerprint_reads_full_width_as_ascii():
    vault = make_vault()
    assert vault.fingerprint("\uff21\uff22\uff23\uff0d\uff11") == vault.fingerprint("ABC-1")


def test_folded_fingerprint_ignores_case_and_exact_one_does_not():
    vault = make_vault()
    assert vault.fingerprint("abc-1", folded=True) == vault.fingerprint("ABC-1", folded=True)
    assert vault.fingerprint("abc-1") != vault.fingerprint("ABC-1")
    assert vault.fingerprint("ABC-1", folded=True) == vault.fingerprint("ABC-1")
