"""ops.statements splits SQL as the Supabase CLI's parser does (its cases: supabase/cli pkg/parser)."""

from __future__ import annotations

from ops.statements import split_statements


def test_a_semicolon_ends_a_statement_and_is_trimmed_with_the_whitespace() -> None:
    assert split_statements("select 1;\n\n select 2 ;;\nselect 3") == ["select 1", "select 2", "select 3"]


def test_a_semicolon_in_a_quote_comment_or_dollar_quote_does_not() -> None:
    sql = (
        "select 'a;''b';\n"
        '-- a comment; still the comment\nselect "x;y";\n'
        "/* a block; /* nested; */ still */ select 2;\n"
        "create function f() returns int language sql as $$ select 1; $$;\n"
        "do $body$ begin perform 1; end $body$;\n"
        "select $1;"
    )
    assert split_statements(sql) == [
        "select 'a;''b'",
        '-- a comment; still the comment\nselect "x;y"',
        "/* a block; /* nested; */ still */ select 2",
        "create function f() returns int language sql as $$ select 1; $$",
        "do $body$ begin perform 1; end $body$",
        "select $1",
    ]


def test_a_begin_atomic_body_is_one_statement() -> None:
    sql = "create function f() returns int language sql begin atomic select 1; select 2; end;\nselect 3;"
    assert split_statements(sql) == [
        "create function f() returns int language sql begin atomic select 1; select 2; end",
        "select 3",
    ]


def test_a_trailing_comment_is_a_statement_of_its_own() -> None:
    assert split_statements("select 1;\n-- the end\n") == ["select 1", "-- the end"]
