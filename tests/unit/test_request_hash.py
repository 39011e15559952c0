"""The idempotency request hash: keyed by the master key, separate from the look-up key."""

import hashlib
import secrets

from engine.kernel.vault import Vault


def test_request_hash_depends_on_the_master_key():
    request = b'{"code":"GUESS-1"}'
    one, other = Vault(secrets.token_bytes(32)), Vault(secrets.token_bytes(32))
    assert one.hash_request(request) == one.hash_request(request)
    assert one.hash_request(request) != other.hash_request(request)
    assert one.hash_request(request) != hashlib.sha256(request).hexdigest()


def test_request_hash_is_not_the_code_fingerprint():
    vault = Vault(secrets.token_bytes(32))
    assert vault.hash_request(b"GUESS-1") != vault.fingerprint("GUESS-1")
