"""The Credity schema SQL: applied twice as the non-superuser target owner, and
in each service's own source database, the catalog matches the live data model.

The expected structure below is the data model of the three services written out
as data (tables, columns in order, types, nullability, defaults, keys,
constraint names, enum labels in order); the test reads the catalog and compares.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from psycopg import sql

from migration_engine.schema_sql import (
    SchemaSqlError,
    apply_drizzle_migration,
    apply_schema,
    create_source_layout,
    step_statements,
)

pytestmark = pytest.mark.integration

WALLET_0000 = Path(__file__).resolve().parents[1] / "fixtures" / "wallet_0000_fuzzy_cammi.sql"

STATE_STORE_COLUMNS = [
    ("service_key", "text", False, None),
    ("payload", "jsonb", False, None),
    ("updated_at", "timestamp with time zone", False, "now()"),
]

# (column, type, nullable, default) in column order; types and defaults as the
# catalog prints them with the service's schema first on the search_path.
EXPECTED_TABLES = {
    "wallet": {
        "users": [
            ("id", "integer", False, "nextval('users_id_seq'::regclass)"),
            ("username", "text", False, None),
            ("password", "text", False, None),
            ("did", "text", True, None),
            ("name", "text", True, None),
            ("email", "text", True, None),
            ("bio", "text", True, None),
            ("avatar_url", "text", True, None),
            ("phone_number", "text", True, None),
            ("phone_verified", "boolean", True, "false"),
            ("email_verified", "boolean", True, "false"),
        ],
        "credentials": [
            ("id", "integer", False, "nextval('credentials_id_seq'::regclass)"),
            ("user_id", "integer", False, None),
            ("type", "jsonb", False, None),
            ("issuer", "text", False, None),
            ("issuance_date", "timestamp without time zone", False, None),
            ("data", "jsonb", False, None),
            ("jwt", "text", True, None),
            ("is_archived", "boolean", True, "false"),
        ],
        "activities": [
            ("id", "integer", False, "nextval('activities_id_seq'::regclass)"),
            ("user_id", "integer", False, None),
            ("type", "text", False, None),
            ("description", "text", False, None),
            ("timestamp", "timestamp without time zone", True, "now()"),
        ],
        "otp_codes": [
            ("id", "integer", False, "nextval('otp_codes_id_seq'::regclass)"),
            ("user_id", "integer", True, None),
            ("identifier", "text", False, None),
            ("code", "text", False, None),
            ("purpose", "character varying(30)", False, None),
            ("expires_at", "timestamp without time zone", False, None),
            ("used_at", "timestamp without time zone", True, None),
            ("created_at", "timestamp without time zone", True, "now()"),
        ],
        "device_fingerprints": [
            ("id", "integer", False, "nextval('device_fingerprints_id_seq'::regclass)"),
            ("user_id", "integer", False, None),
            ("fingerprint", "text", False, None),
            ("ip_address", "text", True, None),
            ("user_agent", "text", True, None),
            ("created_at", "timestamp without time zone", True, "now()"),
            ("last_seen_at", "timestamp without time zone", True, "now()"),
        ],
        "claims": [
            ("id", "integer", False, "nextval('claims_id_seq'::regclass)"),
            ("claimant_user_id", "integer", False, None),
            ("platform_id", "character varying(255)", True, None),
            ("claim_type", "character varying(50)", True, None),
            ("claim_amount", "numeric(12,2)", True, None),
            ("description", "text", True, None),
            ("timeline", "jsonb", True, None),
            ("evidence_ids", "jsonb", True, None),
            ("identity_score", "integer", True, None),
            ("integrity_score", "integer", True, None),
            ("authenticity_score", "integer", True, None),
            ("trust_score", "integer", True, None),
            ("recommendation", "character varying(20)", True, None),
            ("red_flags", "jsonb", True, None),
            ("ai_analysis", "jsonb", True, None),
            ("processing_time_ms", "integer", True, None),
            ("created_at", "timestamp without time zone", True, "now()"),
            ("processed_at", "timestamp without time zone", True, None),
        ],
        "evidence": [
            ("id", "integer", False, "nextval('evidence_id_seq'::regclass)"),
            ("user_id", "integer", False, None),
            ("claim_id", "integer", True, None),
            ("media_type", "character varying(20)", True, None),
            ("storage_url", "text", True, None),
            ("authenticity_score", "integer", True, None),
            ("is_ai_generated", "boolean", True, None),
            ("manipulation_detected", "boolean", True, None),
            ("metadata", "jsonb", True, None),
            ("blockchain_hash", "character varying(66)", True, None),
            ("analysis_data", "jsonb", True, None),
            ("uploaded_at", "timestamp without time zone", True, "now()"),
            ("analyzed_at", "timestamp without time zone", True, None),
        ],
        "subscriptions": [
            ("id", "integer", False, "nextval('subscriptions_id_seq'::regclass)"),
            ("user_id", "integer", False, None),
            ("plan", "character varying(50)", False, None),
            ("status", "character varying(20)", False, "'active'::character varying"),
            ("razorpay_subscription_id", "text", True, None),
            ("razorpay_customer_id", "text", True, None),
            ("current_period_start", "timestamp without time zone", True, None),
            ("current_period_end", "timestamp without time zone", True, None),
            ("cancelled_at", "timestamp without time zone", True, None),
            ("created_at", "timestamp without time zone", True, "now()"),
            ("updated_at", "timestamp without time zone", True, "now()"),
        ],
        "api_usage": [
            ("id", "integer", False, "nextval('api_usage_id_seq'::regclass)"),
            ("user_id", "integer", True, None),
            ("platform_api_key", "text", True, None),
            ("endpoint", "text", False, None),
            ("month", "character varying(7)", False, None),
            ("count", "integer", False, "0"),
            ("last_recorded_at", "timestamp without time zone", True, "now()"),
        ],
        "platform_connections": [
            ("id", "integer", False, "nextval('platform_connections_id_seq'::regclass)"),
            ("user_id", "integer", False, None),
            ("platform_id", "character varying(100)", False, None),
            ("platform_name", "text", False, None),
            ("status", "character varying(20)", False, "'pending'::character varying"),
            ("oauth_access_token", "text", True, None),
            ("oauth_refresh_token", "text", True, None),
            ("scopes", "text", True, None),
            ("connected_at", "timestamp without time zone", True, None),
            ("last_synced_at", "timestamp without time zone", True, None),
            ("created_at", "timestamp without time zone", True, "now()"),
        ],
        "reputation_events": [
            ("id", "integer", False, "nextval('reputation_events_id_seq'::regclass)"),
            ("user_id", "integer", False, None),
            ("event_id", "text", False, None),
            ("platform", "text", False, None),
            ("category", "character varying(50)", False, None),
            ("signal_type", "text", False, None),
            ("score", "integer", False, None),
            ("weight", "integer", False, None),
            ("decay_factor", "numeric(5,4)", True, None),
            ("metadata", "jsonb", True, None),
            ("event_date", "timestamp without time zone", False, None),
            ("created_at", "timestamp without time zone", True, "now()"),
        ],
        "reputation_scores": [
            ("id", "integer", False, "nextval('reputation_scores_id_seq'::regclass)"),
            ("user_id", "integer", False, None),
            ("raw_score", "integer", False, "500"),
            ("normalized_score", "integer", False, "500"),
            ("category_breakdown", "jsonb", True, None),
            ("event_count", "integer", False, "0"),
            ("last_calculated_at", "timestamp without time zone", True, "now()"),
            ("updated_at", "timestamp without time zone", True, "now()"),
        ],
        "safedate_scores": [
            ("id", "integer", False, "nextval('safedate_scores_id_seq'::regclass)"),
            ("user_id", "integer", False, None),
            ("score", "integer", False, "50"),
            ("trust_level", "character varying(20)", True, None),
            ("inputs", "jsonb", True, None),
            ("calculated_at", "timestamp without time zone", True, "now()"),
        ],
        "credverse_state_store": STATE_STORE_COLUMNS,
    },
    "issuer": {
        "tenants": [
            ("id", "uuid", False, "gen_random_uuid()"),
            ("name", "text", False, None),
            ("plan", "text", True, "'free'::text"),
            ("created_at", "timestamp without time zone", True, "now()"),
        ],
        "api_keys": [
            ("id", "uuid", False, "gen_random_uuid()"),
            ("tenant_id", "uuid", False, None),
            ("key_hash", "text", False, None),
            ("permissions", "jsonb", True, "'[]'::jsonb"),
            ("created_at", "timestamp without time zone", True, "now()"),
            ("expires_at", "timestamp without time zone", True, None),
        ],
        "issuers": [
            ("id", "uuid", False, "gen_random_uuid()"),
            ("tenant_id", "uuid", False, None),
            ("name", "text", False, None),
            ("domain", "text", False, None),
            ("did", "text", True, None),
            ("trust_status", "trust_status", True, "'pending'::trust_status"),
            ("meta", "jsonb", True, None),
            ("created_at", "timestamp without time zone", True, "now()"),
        ],
        "users": [
            ("id", "uuid", False, "gen_random_uuid()"),
            ("tenant_id", "uuid", True, None),
            ("username", "text", False, None),
            ("password", "text", False, None),
            ("role", "text", True, "'user'::text"),
            ("created_at", "timestamp without time zone", True, "now()"),
        ],
        "templates": [
            ("id", "uuid", False, "gen_random_uuid()"),
            ("tenant_id", "uuid", False, None),
            ("name", "text", False, None),
            ("schema", "jsonb", False, None),
            ("render", "text", False, None),
            ("version", "text", True, "'1.0.0'::text"),
            ("disclosure", "jsonb", True, "'{}'::jsonb"),
            ("created_at", "timestamp without time zone", True, "now()"),
        ],
        "credentials": [
            ("id", "uuid", False, "gen_random_uuid()"),
            ("tenant_id", "uuid", False, None),
            ("template_id", "uuid", False, None),
            ("issuer_id", "uuid", False, None),
            ("format", "text", True, "'vc+jwt'::text"),
            ("issuer_did", "text", True, None),
            ("subject_did", "text", True, None),
            ("status_list_id", "text", True, None),
            ("status_list_index", "integer", True, None),
            ("anchor_batch_id", "text", True, None),
            ("anchor_proof", "jsonb", True, None),
            ("holder_binding", "jsonb", True, None),
            ("issuance_flow", "text", True, "'legacy'::text"),
            ("recipient", "jsonb", False, None),
            ("credential_data", "jsonb", False, None),
            ("vc_jwt", "text", True, None),
            ("ipfs_hash", "text", True, None),
            ("anchor_id", "text", True, None),
            ("tx_hash", "text", True, None),
            ("block_number", "integer", True, None),
            ("credential_hash", "text", True, None),
            ("revoked", "boolean", True, "false"),
            ("created_at", "timestamp without time zone", True, "now()"),
        ],
        "trust_score_snapshots": [
            ("id", "uuid", False, "gen_random_uuid()"),
            ("user_id", "uuid", False, None),
            ("score", "integer", False, None),
            ("signals_version", "text", False, None),
            ("features_hash", "text", False, None),
            ("model_version", "text", False, None),
            ("explanation_json", "jsonb", False, None),
            ("decay_applied_at", "timestamp without time zone", True, None),
            ("created_at", "timestamp without time zone", True, "now()"),
        ],
        "platform_authorities": [
            ("id", "uuid", False, "gen_random_uuid()"),
            ("tenant_id", "uuid", True, None),
            ("platform_id", "text", False, None),
            ("name", "text", False, None),
            ("domain", "text", True, None),
            ("status", "platform_authority_status", True, "'pending'::platform_authority_status"),
            ("allowed_verticals", "jsonb", True, "'[]'::jsonb"),
            ("allowed_categories", "jsonb", True, "'[]'::jsonb"),
            ("created_at", "timestamp without time zone", True, "now()"),
        ],
        "reputation_events": [
            ("id", "uuid", False, "gen_random_uuid()"),
            ("event_id", "text", True, None),
            ("subject_did", "text", False, None),
            ("platform_id", "text", False, None),
            ("category", "reputation_category", False, None),
            ("signal_type", "text", False, None),
            ("score", "integer", False, None),
            ("occurred_at", "timestamp without time zone", False, None),
            ("metadata", "jsonb", True, "'{}'::jsonb"),
            ("created_at", "timestamp without time zone", True, "now()"),
        ],
        "reputation_signal_snapshots": [
            ("id", "uuid", False, "gen_random_uuid()"),
            ("subject_did", "text", False, None),
            ("signals", "jsonb", False, None),
            ("signals_version", "text", False, None),
            ("computed_at", "timestamp without time zone", True, "now()"),
        ],
        "reputation_scores": [
            ("id", "uuid", False, "gen_random_uuid()"),
            ("subject_did", "text", False, None),
            ("vertical", "reputation_vertical", True, "'overall'::reputation_vertical"),
            ("score", "integer", False, None),
            ("event_count", "integer", False, None),
            ("breakdown", "jsonb", True, "'[]'::jsonb"),
            ("computed_at", "timestamp without time zone", True, "now()"),
        ],
        "reputation_share_grants": [
            ("id", "uuid", False, "gen_random_uuid()"),
            ("subject_did", "text", False, None),
            ("grantee_id", "text", False, None),
            ("purpose", "text", False, None),
            ("data_elements", "jsonb", True, "'[]'::jsonb"),
            ("expires_at", "timestamp without time zone", False, None),
            ("revoked_at", "timestamp without time zone", True, None),
            ("created_at", "timestamp without time zone", True, "now()"),
        ],
        "consent_grants": [
            ("id", "uuid", False, "gen_random_uuid()"),
            ("subject_id", "uuid", False, None),
            ("verifier_id", "text", False, None),
            ("purpose", "text", False, None),
            ("data_elements", "jsonb", True, "'[]'::jsonb"),
            ("expiry", "timestamp without time zone", False, None),
            ("revocation_ts", "timestamp without time zone", True, None),
            ("consent_proof", "jsonb", False, None),
            ("created_at", "timestamp without time zone", True, "now()"),
        ],
        "students": [
            ("id", "uuid", False, "gen_random_uuid()"),
            ("tenant_id", "uuid", False, None),
            ("name", "text", False, None),
            ("email", "text", False, None),
            ("student_id", "text", False, None),
            ("program", "text", False, None),
            ("enrollment_year", "text", False, None),
            ("status", "student_status", True, "'Active'::student_status"),
            ("created_at", "timestamp without time zone", True, "now()"),
        ],
        "team_members": [
            ("id", "uuid", False, "gen_random_uuid()"),
            ("tenant_id", "uuid", False, None),
            ("name", "text", False, None),
            ("email", "text", False, None),
            ("role", "team_role", True, "'Viewer'::team_role"),
            ("status", "team_status", True, "'Pending'::team_status"),
            ("invited_at", "timestamp without time zone", True, "now()"),
            ("joined_at", "timestamp without time zone", True, None),
        ],
        "verification_logs": [
            ("id", "uuid", False, "gen_random_uuid()"),
            ("tenant_id", "uuid", False, None),
            ("credential_id", "uuid", True, None),
            ("verifier_name", "text", False, None),
            ("verifier_location", "text", True, None),
            ("ip_address", "text", True, None),
            ("status", "verification_status", True, "'success'::verification_status"),
            ("reason", "text", True, None),
            ("timestamp", "timestamp without time zone", True, "now()"),
        ],
        "activity_logs": [
            ("id", "uuid", False, "gen_random_uuid()"),
            ("tenant_id", "uuid", False, None),
            ("type", "text", False, None),
            ("title", "text", False, None),
            ("description", "text", True, None),
            ("metadata", "jsonb", True, None),
            ("timestamp", "timestamp without time zone", True, "now()"),
        ],
        "template_designs": [
            ("id", "uuid", False, "gen_random_uuid()"),
            ("tenant_id", "uuid", False, None),
            ("name", "text", False, None),
            ("category", "text", True, None),
            ("type", "text", True, None),
            ("status", "text", True, "'Draft'::text"),
            ("fields", "jsonb", True, "'[]'::jsonb"),
            ("background_color", "text", True, "'#ffffff'::text"),
            ("width", "integer", True, "842"),
            ("height", "integer", True, "595"),
            ("created_at", "timestamp without time zone", True, "now()"),
            ("updated_at", "timestamp without time zone", True, "now()"),
        ],
        "credverse_state_store": STATE_STORE_COLUMNS,
    },
    "recruiter": {
        "users": [
            ("id", "character varying", False, "gen_random_uuid()"),
            ("username", "text", False, None),
            ("password", "text", False, None),
        ],
        "credverse_state_store": STATE_STORE_COLUMNS,
    },
}
EXPECTED_PRIMARY_KEYS = {
    "wallet": {
        **{
            "users": ("id",),
            "credentials": ("id",),
            "activities": ("id",),
            "otp_codes": ("id",),
            "device_fingerprints": ("id",),
            "claims": ("id",),
            "evidence": ("id",),
            "subscriptions": ("id",),
            "api_usage": ("id",),
            "platform_connections": ("id",),
            "reputation_events": ("id",),
            "reputation_scores": ("id",),
            "safedate_scores": ("id",),
        },
        "credverse_state_store": ("service_key",),
    },
    "issuer": {
        **{
            "tenants": ("id",),
            "api_keys": ("id",),
            "issuers": ("id",),
            "users": ("id",),
            "templates": ("id",),
            "credentials": ("id",),
            "trust_score_snapshots": ("id",),
            "platform_authorities": ("id",),
            "reputation_events": ("id",),
            "reputation_signal_snapshots": ("id",),
            "reputation_scores": ("id",),
            "reputation_share_grants": ("id",),
            "consent_grants": ("id",),
            "students": ("id",),
            "team_members": ("id",),
            "verification_logs": ("id",),
            "activity_logs": ("id",),
            "template_designs": ("id",),
        },
        "credverse_state_store": ("service_key",),
    },
    "recruiter": {**{"users": ("id",)}, "credverse_state_store": ("service_key",)},
}
EXPECTED_UNIQUES = {
    "wallet": {
        "users_username_unique": ("users", "username"),
        "device_fingerprints_fingerprint_unique": ("device_fingerprints", "fingerprint"),
        "subscriptions_razorpay_subscription_id_unique": ("subscriptions", "razorpay_subscription_id"),
        "reputation_events_event_id_unique": ("reputation_events", "event_id"),
        "reputation_scores_user_id_unique": ("reputation_scores", "user_id"),
        "safedate_scores_user_id_unique": ("safedate_scores", "user_id"),
    },
    "issuer": {
        "users_username_unique": ("users", "username"),
        "platform_authorities_platform_id_unique": ("platform_authorities", "platform_id"),
        "reputation_events_event_id_unique": ("reputation_events", "event_id"),
    },
    "recruiter": {"users_username_unique": ("users", "username")},
}
EXPECTED_FOREIGN_KEYS = {
    "wallet": {},
    "issuer": {
        "api_keys_tenant_id_tenants_id_fk": ("api_keys", "tenant_id", "tenants", "id"),
        "issuers_tenant_id_tenants_id_fk": ("issuers", "tenant_id", "tenants", "id"),
        "users_tenant_id_tenants_id_fk": ("users", "tenant_id", "tenants", "id"),
        "templates_tenant_id_tenants_id_fk": ("templates", "tenant_id", "tenants", "id"),
        "credentials_tenant_id_tenants_id_fk": ("credentials", "tenant_id", "tenants", "id"),
        "credentials_template_id_templates_id_fk": ("credentials", "template_id", "templates", "id"),
        "credentials_issuer_id_issuers_id_fk": ("credentials", "issuer_id", "issuers", "id"),
        "platform_authorities_tenant_id_tenants_id_fk": ("platform_authorities", "tenant_id", "tenants", "id"),
        "students_tenant_id_tenants_id_fk": ("students", "tenant_id", "tenants", "id"),
        "team_members_tenant_id_tenants_id_fk": ("team_members", "tenant_id", "tenants", "id"),
        "verification_logs_tenant_id_tenants_id_fk": ("verification_logs", "tenant_id", "tenants", "id"),
        "verification_logs_credential_id_credentials_id_fk": (
            "verification_logs",
            "credential_id",
            "credentials",
            "id",
        ),
        "activity_logs_tenant_id_tenants_id_fk": ("activity_logs", "tenant_id", "tenants", "id"),
        "template_designs_tenant_id_tenants_id_fk": ("template_designs", "tenant_id", "tenants", "id"),
    },
    "recruiter": {},
}
EXPECTED_ENUMS = {
    "wallet": {},
    "issuer": {
        "trust_status": ["pending", "trusted", "revoked"],
        "student_status": ["Active", "Alumni", "Suspended"],
        "team_role": ["Admin", "Issuer", "Viewer"],
        "team_status": ["Active", "Pending", "Inactive"],
        "verification_status": ["success", "failed", "suspicious"],
        "reputation_category": [
            "transport",
            "accommodation",
            "delivery",
            "employment",
            "finance",
            "social",
            "identity",
        ],
        "reputation_vertical": [
            "overall",
            "work",
            "safe_date",
            "gig",
            "rental",
            "health",
            "education",
            "finance",
            "identity",
        ],
        "platform_authority_status": ["pending", "active", "suspended"],
    },
    "recruiter": {},
}


def read_catalog(conn, schema: str) -> dict:
    """Tables, columns, constraints and enums of one schema, as plain data."""
    with conn.transaction():
        # Types and defaults then print unqualified, the same for any schema name.
        conn.execute("SELECT set_config('search_path', %s, true)", (schema,))
        columns = conn.execute(
            """
            SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull,
                   pg_get_expr(d.adbin, d.adrelid)
            FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
            LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
            WHERE n.nspname = %s AND c.relkind IN ('r', 'p')
            ORDER BY c.relname, a.attnum
            """,
            (schema,),
        ).fetchall()
        constraints = conn.execute(
            """
            SELECT con.conname, con.contype, rel.relname,
                   array(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(num, i)
                         JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num ORDER BY k.i),
                   refn.nspname, ref.relname,
                   array(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(num, i)
                         JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num ORDER BY k.i),
                   con.convalidated, con.confdeltype, con.confupdtype
            FROM pg_constraint con
            JOIN pg_class rel ON rel.oid = con.conrelid
            JOIN pg_namespace n ON n.oid = rel.relnamespace
            LEFT JOIN pg_class ref ON ref.oid = con.confrelid
            LEFT JOIN pg_namespace refn ON refn.oid = ref.relnamespace
            WHERE n.nspname = %s
            """,
            (schema,),
        ).fetchall()
        enums = conn.execute(
            """
            SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder)
            FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid JOIN pg_namespace n ON n.oid = t.typnamespace
            WHERE n.nspname = %s GROUP BY t.typname
            """,
            (schema,),
        ).fetchall()
        serial_sequences = conn.execute(
            """
            SELECT c.relname, a.attname, pg_get_serial_sequence(format('%%I.%%I', n.nspname, c.relname), a.attname)
            FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
            WHERE n.nspname = %s AND c.relkind = 'r'
              AND pg_get_serial_sequence(format('%%I.%%I', n.nspname, c.relname), a.attname) IS NOT NULL
            """,
            (schema,),
        ).fetchall()
    tables: dict[str, list] = {}
    for table, column, type_, nullable, default in columns:
        tables.setdefault(table, []).append((column, type_, nullable, default))
    primary_keys, uniques, foreign_keys, other = {}, {}, {}, []
    for name, kind, table, cols, ref_schema, ref_table, ref_cols, validated, on_delete, on_update in constraints:
        if kind == "p":
            assert name == f"{table}_pkey"
            primary_keys[table] = tuple(cols)
        elif kind == "u":
            assert len(cols) == 1 and validated
            uniques[name] = (table, cols[0])
        elif kind == "f":
            # Validated (step 08 ran its VALIDATE files), same schema, no ON DELETE/UPDATE action.
            assert (ref_schema, validated, on_delete, on_update) == (schema, True, "a", "a"), name
            assert len(cols) == 1 and len(ref_cols) == 1
            foreign_keys[name] = (table, cols[0], ref_table, ref_cols[0])
        else:
            other.append(name)
    return {
        "tables": tables,
        "primary_keys": primary_keys,
        "uniques": uniques,
        "foreign_keys": foreign_keys,
        "other_constraints": other,
        "enums": {name: list(labels) for name, labels in enums},
        "serial_sequences": {(t, c): seq for t, c, seq in serial_sequences},
    }


def assert_matches_facts(catalog: dict, service: str, schema: str) -> None:
    expected_tables = EXPECTED_TABLES[service]
    assert sorted(catalog["tables"]) == sorted(expected_tables), f"{service}: tables differ"
    for table, columns in expected_tables.items():
        assert catalog["tables"][table] == columns, f"{schema}.{table}: columns differ"
    assert catalog["primary_keys"] == EXPECTED_PRIMARY_KEYS[service]
    assert catalog["uniques"] == EXPECTED_UNIQUES[service]
    assert catalog["foreign_keys"] == EXPECTED_FOREIGN_KEYS[service]
    assert catalog["other_constraints"] == []
    assert catalog["enums"] == EXPECTED_ENUMS[service]
    expected_serials = {
        (table, column): f"{schema}.{table}_{column}_seq"
        for table, columns in expected_tables.items()
        for column, _type, _nullable, default in columns
        if default and default.startswith("nextval(")
    }
    assert catalog["serial_sequences"] == expected_serials


def test_target_schema_applies_twice_as_the_non_superuser_owner_and_matches_the_facts(estate, manifest):
    with estate.target_endpoint().connect(autocommit=True) as conn:
        role, superuser = conn.execute(
            "SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        assert (role, superuser) == ("migrator", False)

        first = apply_schema(conn, manifest)
        second = apply_schema(conn, manifest)

        assert first == second
        assert first[0].startswith("00_service_schemas/") and first[-1].startswith("08_post_load_constraints/")
        assert conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'pgcrypto'").fetchone() == (1,)
        for service in manifest.services:
            assert_matches_facts(read_catalog(conn, service.target_schema), service.name, service.target_schema)


def test_source_layout_in_each_source_database_matches_the_facts(estate, manifest):
    endpoints = estate.source_endpoints()

    first = create_source_layout(manifest, endpoints)
    second = create_source_layout(manifest, endpoints)

    assert first == second
    for service in manifest.services:
        assert not any(label.startswith("00_service_schemas/") for label in first[service.name])
        assert "01_extensions/create_extension_pgcrypto.sql" in first[service.name]
        with endpoints[service.name].connect(autocommit=True) as conn:
            assert_matches_facts(read_catalog(conn, "public"), service.name, "public")


def test_step_statements_render_each_service_schema_for_the_layout(manifest):
    target = step_statements(manifest, "foundational_tables", "target")
    source = step_statements(manifest, "foundational_tables", "source", services=["wallet"])

    assert [(s.label, s.service) for s in target] == [
        ("03_foundational_tables/issuer/10_create_tenants.sql", "issuer"),
        ("03_foundational_tables/issuer/11_create_users.sql", "issuer"),
        ("03_foundational_tables/wallet/10_create_users.sql", "wallet"),
    ]
    assert 'CREATE TABLE IF NOT EXISTS "issuer".tenants' in target[0].statement.as_string(None)
    assert [s.label for s in source] == ["03_foundational_tables/wallet/10_create_users.sql"]
    assert 'CREATE TABLE IF NOT EXISTS "public".users' in source[0].statement.as_string(None)
    assert step_statements(manifest, "service_schemas", "source") == []
    with pytest.raises(SchemaSqlError, match="no schema step 'nope'"):
        step_statements(manifest, "nope")
    with pytest.raises(SchemaSqlError, match="unknown service"):
        step_statements(manifest, "extensions", services=["payroll"])


def test_wallet_0000_migration_builds_the_old_wallet_tables_without_the_drift(estate, manifest):
    schema = "wallet_0000"
    with estate.target_endpoint().connect(autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))

        assert apply_drizzle_migration(conn, WALLET_0000, schema=schema) == 10
        apply_drizzle_migration(conn, WALLET_0000, schema=schema)

        catalog = read_catalog(conn, schema)
    live = {table: cols for table, cols in EXPECTED_TABLES["wallet"].items() if table != "credverse_state_store"}
    drift_tables = {"reputation_events", "reputation_scores", "safedate_scores"}
    assert sorted(catalog["tables"]) == sorted(set(live) - drift_tables)
    assert [c[0] for c in catalog["tables"]["users"]] == [
        c[0] for c in live["users"] if c[0] not in {"phone_number", "phone_verified", "email_verified"}
    ]
    for table in set(live) - drift_tables - {"users"}:
        assert catalog["tables"][table] == live[table], table
