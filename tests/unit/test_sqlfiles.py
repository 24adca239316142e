"""SQL templates: every identifier quoted through ``| ident``, values left as bound placeholders,
and the same text whether the engine or Airflow's own environment renders a file."""

from __future__ import annotations

import re

import pytest

from migration_engine import dag_support, sqlfiles

HOSTILE = 'x"; DROP TABLE y; --'


def test_identifiers_are_quoted_and_values_stay_placeholders():
    text = sqlfiles.load("cutover", "set_read_path").render_text(control_schema=HOSTILE)
    assert text.startswith('UPDATE "x""; DROP TABLE y; --".read_path\n')
    assert "%(side)s" in text and "%(services)s" in text


def test_a_tuple_renders_a_qualified_name():
    text = sqlfiles.render_text("SELECT * FROM {{ t | ident }}", {"t": ("my schema", 'ta"ble')})
    assert text == 'SELECT * FROM "my schema"."ta""ble"'


@pytest.mark.parametrize("template", ["SELECT {{ name }}", "SELECT {{ name | upper }}", "SELECT {{ 1 }}"])
def test_an_unquoted_expression_is_refused_naming_the_file(template):
    with pytest.raises(sqlfiles.TemplateError, match=r"probe\.sql: an expression rendered .* without quoting"):
        sqlfiles.render_text(template, {"name": HOSTILE}, origin="probe.sql")


def test_a_statement_by_its_phase_and_name_takes_the_identifiers_it_names_and_ignores_the_rest():
    rendered = sqlfiles.statement("ledger/select_fence", fence=("control", "fence"), runs=("control", "runs"))
    assert rendered.as_string().strip() == 'SELECT epoch, phase, claimed_by FROM "control"."fence"'
    with pytest.raises(sqlfiles.TemplateError, match=r"SQL file not found: include/sql/ledger/no_such_file\.sql"):
        sqlfiles.statement("ledger/no_such_file")


def test_a_missing_identifier_is_an_error_naming_the_file_and_the_name():
    with pytest.raises(sqlfiles.TemplateError, match=r"cutover/set_read_path\.sql: 'control_schema' is undefined"):
        sqlfiles.load("cutover", "set_read_path").render()


def test_an_identifier_list_quotes_each_name_and_refuses_an_empty_list():
    rendered = sqlfiles.render_text("REVOKE ALL ON {{ tables | ident_list }}", {"tables": [("public", "users"), ("public", 'a"b')]})
    assert rendered == 'REVOKE ALL ON "public"."users", "public"."a""b"'
    with pytest.raises(sqlfiles.TemplateError, match="identifier list"):
        sqlfiles.render_text("REVOKE ALL ON {{ tables | ident_list }}", {"tables": []})


@pytest.mark.parametrize("value", ["", "a\x00b", ("schema", ""), 7])
def test_an_identifier_that_cannot_be_quoted_is_refused(value):
    with pytest.raises(sqlfiles.TemplateError, match="identifier"):
        sqlfiles.render_text("SELECT {{ name | ident }}", {"name": value})


def test_every_expression_in_every_sql_file_passes_through_ident():
    """What the merge of new files must keep: no bare {{ name }} that Airflow would render as raw text."""
    expression = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
    bare = [
        (path.relative_to(sqlfiles.SQL_ROOT).as_posix(), found.strip())
        for path in sorted(sqlfiles.SQL_ROOT.rglob("*.sql"))
        for found in expression.findall(path.read_text())
        if not re.fullmatch(r"\s*[A-Za-z_][A-Za-z0-9_]*\s*\|\s*(ident|ident_list)\s*", found)
    ]
    assert bare == []


def test_airflow_renders_a_file_to_the_same_text_as_the_engine(tmp_path):
    """The DAGs' Jinja settings (searchpath, filter, options) give Airflow's environment the engine's output."""
    from airflow.sdk.definitions._internal.templater import create_template_env

    arguments = dag_support.dag_arguments("doc")
    env = create_template_env(
        searchpath=[arguments["template_searchpath"]],
        jinja_environment_kwargs=arguments["jinja_environment_kwargs"],
        user_defined_filters=arguments["user_defined_filters"],
    )
    identifiers = {"control_schema": HOSTILE}
    by_airflow = env.get_template("cutover/set_read_path.sql").render(**identifiers)
    assert by_airflow == sqlfiles.load("cutover", "set_read_path").render_text(**identifiers)
    # A bare expression in a file fails under Airflow as it does in the engine.
    (tmp_path / "bare.sql").write_text("SELECT {{ control_schema }}")
    bare_env = create_template_env(
        searchpath=[str(tmp_path)], jinja_environment_kwargs=arguments["jinja_environment_kwargs"],
        user_defined_filters=arguments["user_defined_filters"],
    )
    with pytest.raises(sqlfiles.TemplateError, match="bare.sql: an expression rendered str without quoting"):
        bare_env.get_template("bare.sql").render(**identifiers)
