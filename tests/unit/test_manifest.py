"""The manifest loader: the Credity manifest loads, and each malformed case is
rejected with a message naming the file, the path inside it and the fix."""

from __future__ import annotations

import pytest
import yaml

from migration_engine.manifest import DEFAULT_MANIFEST, ManifestError, load_manifest


def test_credity_manifest_describes_three_services_and_all_tables(manifest):
    assert [s.name for s in manifest.services] == ["wallet", "issuer", "recruiter"]
    assert {s.target_schema for s in manifest.services} == {"wallet", "issuer", "recruiter"}
    relational = [t for t in manifest.tables if t.name != manifest.state_store.table]
    assert len(relational) == 32
    assert sum(len(keys) for keys in manifest.state_store.keys_by_service.values()) == 12
    assert manifest.table("wallet.platform_connections").sensitive == ("oauth_access_token", "oauth_refresh_token")


def test_tables_are_ordered_parents_first(manifest):
    order = [t.qualified for t in manifest.tables]
    for table in manifest.tables:
        for parent in table.references:
            assert order.index(f"{table.target_schema}.{parent}") < order.index(table.qualified)


def _write(tmp_path, mutate) -> str:
    raw = yaml.safe_load(DEFAULT_MANIFEST.read_text())
    mutate(raw)
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _rejects(path, where: str, words: str, fix_words: str) -> ManifestError:
    with pytest.raises(ManifestError) as caught:
        load_manifest(path)
    error = caught.value
    message = str(error)
    assert str(path) in message, message
    assert error.path == where, message
    assert words in error.problem, message
    assert fix_words in error.fix, message
    return error


def test_unknown_key_is_rejected_naming_it(tmp_path):
    path = _write(tmp_path, lambda m: m["services"]["wallet"]["tables"]["users"].update(keys=["id"]))
    _rejects(path, "services.wallet.tables.users.keys", "unknown key 'keys'", "key")


def test_unknown_top_level_key_is_rejected(tmp_path):
    path = _write(tmp_path, lambda m: m.update(extra_setting=True))
    _rejects(path, "extra_setting", "unknown key", "remove it")


def test_duplicate_table_is_rejected_with_its_line(tmp_path):
    text = DEFAULT_MANIFEST.read_text().replace(
        "      users: {key: [id]}\n      credentials: {key: [id]}\n",
        "      users: {key: [id]}\n      credentials: {key: [id]}\n      users: {key: [id]}\n",
        1,
    )
    path = tmp_path / "dup.yaml"
    path.write_text(text)
    with pytest.raises(ManifestError) as caught:
        load_manifest(path)
    assert "duplicate key 'users'" in caught.value.problem
    assert caught.value.path.startswith("line ")
    assert "list each key once" in caught.value.fix


def test_table_without_key_is_rejected(tmp_path):
    path = _write(tmp_path, lambda m: m["services"]["issuer"]["tables"].update(tenants={"references": []}))
    _rejects(path, "services.issuer.tables.tenants.key", "table has no key", "key: [column]")


def test_table_with_empty_key_is_rejected(tmp_path):
    path = _write(tmp_path, lambda m: m["services"]["issuer"]["tables"].update(tenants={"key": []}))
    _rejects(path, "services.issuer.tables.tenants.key", "non-empty list", "[a, b]")


def test_reference_to_undefined_connection_is_rejected(tmp_path):
    path = _write(tmp_path, lambda m: m["services"]["recruiter"].update(source="recruiter_old"))
    _rejects(path, "services.recruiter.source", "'recruiter_old' is not defined", "connections.sources")


def test_foreign_key_cycle_is_rejected_naming_the_cycle(tmp_path):
    def make_cycle(m):
        m["services"]["issuer"]["tables"]["tenants"] = {"key": ["id"], "references": ["credentials"]}

    error = _rejects(
        _write(tmp_path, make_cycle), "services.issuer.tables.tenants.references", "foreign-key cycle", "break the cycle"
    )
    assert "tenants -> credentials -> tenants" in error.problem


def test_reference_to_unknown_table_is_rejected(tmp_path):
    path = _write(tmp_path, lambda m: m["services"]["issuer"]["tables"]["students"].update(references=["schools"]))
    _rejects(path, "services.issuer.tables.students.references[0]", "'schools' is not a table", "remove the reference")


def test_state_store_key_owned_twice_is_rejected(tmp_path):
    path = _write(tmp_path, lambda m: m["state_store"]["keys_by_service"]["recruiter"].append("wallet-storage"))
    _rejects(path, "state_store.keys_by_service.recruiter[4]", "already owned by service 'wallet'", "one owner")


def test_two_services_into_one_schema_is_rejected(tmp_path):
    path = _write(tmp_path, lambda m: m["services"]["recruiter"].update(target_schema="wallet"))
    _rejects(path, "services.recruiter.target_schema", "also the target of service 'wallet'", "own target schema")


def test_bad_chunk_hint_is_rejected(tmp_path):
    path = _write(tmp_path, lambda m: m["services"]["wallet"]["tables"]["users"].update(chunk_rows=-5))
    _rejects(path, "services.wallet.tables.users.chunk_rows", "whole number above 0", "chunk_rows")


def test_invalid_yaml_names_the_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("migration: credity\nservices: [unclosed\n")
    with pytest.raises(ManifestError) as caught:
        load_manifest(path)
    assert caught.value.path.startswith("line ")


def test_missing_file_is_a_manifest_error(tmp_path):
    with pytest.raises(ManifestError, match="cannot read the file"):
        load_manifest(tmp_path / "absent.yaml")


def test_hostile_identifiers_load_but_must_fit_postgres(tmp_path):
    hostile = 'users"; DROP TABLE x; --'
    path = _write(tmp_path, lambda m: m["services"]["recruiter"]["tables"].update({hostile: {"key": ["id"]}}))
    assert load_manifest(path).table(f"recruiter.{hostile}").name == hostile
    too_long = "t" * 64
    path = _write(tmp_path, lambda m: m["services"]["recruiter"]["tables"].update({too_long: {"key": ["id"]}}))
    _rejects(path, f"services.recruiter.tables.{too_long}", "longer than 63 bytes", "shorten")
