"""Passwords are hashed with argon2id's strong parameters everywhere but in the test suite.

The suite hashes thousands of passwords with argon2's cheapest parameters (under TESTING
only, portal/auth/passwords.py); these tests prove a portal as deployed never does.
"""

from __future__ import annotations

from argon2 import extract_parameters, profiles

from portal import create_app
from portal.auth.passwords import hash_password, verify_password

# argon2-cffi's recommended parameters (RFC 9106's second recommendation): 64 MiB, 3 passes.
STRONG = profiles.RFC_9106_LOW_MEMORY
PASSWORD = "a long and unusual passphrase 2026"


def strong(password_hash: str) -> bool:
    found = extract_parameters(password_hash)
    return (
        found.type.name == "ID"
        and found.memory_cost >= 65536
        and found.time_cost >= 3
        and found.parallelism == STRONG.parallelism
        and found.salt_len >= 16
        and found.hash_len >= 32
    )


def test_a_portal_as_deployed_hashes_with_the_strong_parameters(tmp_path):
    app = create_app({"INSTANCE_PATH": str(tmp_path / "prod")})  # the shipped defaults
    assert app.config["ENV"] == "production" and not app.config.get("TESTING")
    with app.app_context():
        made = hash_password(PASSWORD)
        assert strong(made) and extract_parameters(made) == STRONG
        assert verify_password(made, PASSWORD)
        assert not verify_password(made, PASSWORD + "!")


def test_development_and_code_outside_an_app_hash_with_the_strong_parameters(tmp_path, monkeypatch):
    monkeypatch.setenv("PORTAL_ENV", "development")
    app = create_app({"INSTANCE_PATH": str(tmp_path / "dev")})
    assert app.config["ENV"] == "development"
    with app.app_context():
        assert strong(hash_password(PASSWORD))
    assert strong(hash_password(PASSWORD))  # no app at all (a script, a shell)


def test_testing_cannot_be_switched_on_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("PORTAL_TESTING", "1")
    app = create_app({"INSTANCE_PATH": str(tmp_path / "prod")})
    assert not app.config.get("TESTING")
    with app.app_context():
        assert strong(hash_password(PASSWORD))


def test_the_suite_hashes_cheaply_and_both_kinds_of_hash_verify_anywhere(app, tmp_path):
    deployed = create_app({"INSTANCE_PATH": str(tmp_path / "prod")})
    with deployed.app_context():
        strong_hash = hash_password(PASSWORD)
    with app.app_context():  # TESTING
        cheap_hash = hash_password(PASSWORD)
        assert extract_parameters(cheap_hash) == profiles.CHEAPEST and not strong(cheap_hash)
        assert verify_password(strong_hash, PASSWORD)
        assert not verify_password(strong_hash, "not " + PASSWORD)
    with deployed.app_context():
        assert verify_password(cheap_hash, PASSWORD)
        assert not verify_password(cheap_hash, "not " + PASSWORD)
