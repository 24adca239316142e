"""diff_catalogs is pure: fingerprints written by hand, differences named exactly."""

from __future__ import annotations

import copy

from migration_engine.catalog import Fingerprint, diff_catalogs, schema_digest, strip_schema


def column(type_: str, not_null: bool = False, default: str | None = None) -> dict:
    return {"type": type_, "not_null": not_null, "default": default, "identity": None, "generated": None}


def constraint(kind: str, name: str, **extra) -> dict:
    return {"name": name, "kind": kind, "validated": True, "deferrable": False, "initially_deferred": False, **extra}


FK = {"on_update": "no action", "on_delete": "no action", "match": "simple"}

ISSUER = {
    "enums": {"trust_status": ["pending", "trusted", "revoked"]},
    "tables": {
        "tenants": {
            "columns": {
                "id": column("uuid", True, "gen_random_uuid()"),
                "plan": column("text", False, "'free'::text"),
            },
            "constraints": {"primary key (id)": constraint("primary key", "tenants_pkey")},
            "indexes": {},
        },
        "issuers": {
            "columns": {
                "id": column("uuid", True, "gen_random_uuid()"),
                "tenant_id": column("uuid", True),
                "trust_status": column("trust_status", False, "'pending'::trust_status"),
            },
            "constraints": {
                "primary key (id)": constraint("primary key", "issuers_pkey"),
                "foreign key (tenant_id) references tenants (id)": constraint("foreign key", "issuers_tenant_id_fk", **FK),
            },
            "indexes": {"issuers_domain_idx": "CREATE INDEX issuers_domain_idx ON issuers USING btree (domain)"},
        },
    },
}


def pair():
    return Fingerprint({"public": copy.deepcopy(ISSUER)}), Fingerprint({"issuer": copy.deepcopy(ISSUER)})


def test_identical_schemas_have_no_difference_and_equal_digests_across_schema_names():
    source, target = pair()
    assert diff_catalogs(source, target, {"public": "issuer"}) == []
    assert schema_digest(source, "public") == schema_digest(target, "issuer")
    assert source.sha256 != target.sha256  # the whole fingerprint names its schemas


def test_missing_column_is_named_with_its_type():
    source, target = pair()
    del target.schemas["issuer"]["tables"]["tenants"]["columns"]["plan"]
    assert diff_catalogs(source, target, {"public": "issuer"}) == [
        "issuer.tenants: column plan (text) exists in source, missing in target"
    ]


def test_type_nullability_and_default_differences():
    source, target = pair()
    target.schemas["issuer"]["tables"]["tenants"]["columns"]["plan"] = column("character varying(20)", True, None)
    assert diff_catalogs(source, target, {"public": "issuer"}) == [
        "issuer.tenants: column plan type text in source, character varying(20) in target",
        "issuer.tenants: column plan is nullable in source, NOT NULL in target",
        "issuer.tenants: column plan default 'free'::text in source, none in target",
    ]


def test_enum_value_missing_and_order_changed():
    source, target = pair()
    target.schemas["issuer"]["enums"]["trust_status"] = ["trusted", "pending"]
    assert diff_catalogs(source, target, {"public": "issuer"}) == [
        "issuer.trust_status: enum value 'revoked' exists in source, missing in target",
        "issuer.trust_status: enum values ordered ['pending', 'trusted'] in source, ['trusted', 'pending'] in target",
    ]


def test_deferred_ignores_foreign_keys_and_indexes_but_a_full_compare_names_them():
    source, target = pair()
    issuers = target.schemas["issuer"]["tables"]["issuers"]
    del issuers["constraints"]["foreign key (tenant_id) references tenants (id)"]
    issuers["indexes"].clear()
    assert diff_catalogs(source, target, {"public": "issuer"}, deferred=True) == []
    assert diff_catalogs(source, target, {"public": "issuer"}) == [
        "issuer.issuers: foreign key (tenant_id) references tenants (id) exists in source, missing in target",
        "issuer.issuers: index issuers_domain_idx exists in source, missing in target: "
        "CREATE INDEX issuers_domain_idx ON issuers USING btree (domain)",
    ]


def test_not_valid_constraint_is_a_difference_in_a_full_compare():
    source, target = pair()
    fk = target.schemas["issuer"]["tables"]["issuers"]["constraints"]["foreign key (tenant_id) references tenants (id)"]
    fk["validated"] = False
    assert diff_catalogs(source, target, {"public": "issuer"}) == [
        "issuer.issuers: foreign key (tenant_id) references tenants (id) is validated in source, NOT VALID in target"
    ]


def test_missing_table_and_table_filter():
    source, target = pair()
    del target.schemas["issuer"]["tables"]["issuers"]
    assert diff_catalogs(source, target, {"public": "issuer"}) == [
        "issuer.issuers: table exists in source, missing in target"
    ]
    assert diff_catalogs(source, target, {"public": "issuer"}, tables={"issuer": {"tenants"}}) == []


def test_labels_name_the_two_sides():
    source, target = pair()
    target.schemas["issuer"]["tables"]["tenants"]["columns"]["nickname"] = column("text")
    assert diff_catalogs(source, target, {"public": "issuer"}, source_label="preflight", target_label="the live source") == [
        "issuer.tenants: column nickname (text) exists in the live source, missing in preflight"
    ]


def test_strip_schema_normalises_qualified_names_only():
    assert strip_schema("nextval('wallet.users_id_seq'::regclass)", "wallet") == "nextval('users_id_seq'::regclass)"
    assert strip_schema("'pending'::public.trust_status", "public") == "'pending'::trust_status"
    assert strip_schema('\'x\'::"my schema".t', "my schema") == "'x'::t"
    assert strip_schema("nextval('not_wallet.s'::regclass)", "wallet") == "nextval('not_wallet.s'::regclass)"
    assert strip_schema(None, "wallet") is None
