"""template.yaml picks each project's backend from its parameters, as `sam deploy --guided` can give them: a
hidden (NoEcho) parameter cannot be left empty there, so `none` counts as empty."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.test_template import load_template, serverless_functions


def evaluate(expression: Any, parameters: dict[str, str], conditions: dict[str, Any]) -> Any:
    """The value of a condition or !If with these parameters (the intrinsics template.yaml's conditions use)."""
    if not isinstance(expression, dict):
        return expression
    ((name, argument),) = expression.items()
    if name == "Ref":
        return parameters.get(argument, "")
    if name == "Condition":
        return evaluate(conditions[argument], parameters, conditions)
    if name == "Fn::Equals":
        left, right = (evaluate(value, parameters, conditions) for value in argument)
        return left == right
    if name == "Fn::Not":
        return not evaluate(argument[0], parameters, conditions)
    if name == "Fn::Or":
        return any(evaluate(value, parameters, conditions) for value in argument)
    if name == "Fn::If":
        condition, then, otherwise = argument
        return evaluate(
            then if evaluate(conditions[condition], parameters, conditions) else otherwise, parameters, conditions
        )
    raise AssertionError(f"not evaluated here: {name}")


def backend_environment(parameters: dict[str, str]) -> dict[str, Any]:
    """The backend settings every function gets (each function's variables over Globals'), the same for all."""
    conditions = load_template()["Conditions"]
    names = ("PROJECT_A_DB_URL", "PROJECT_B_DB_URL", "PROJECT_A_URL", "PROJECT_A_SERVICE_ROLE_KEY")
    per_function = []
    for function in serverless_functions().values():
        variables = function["Environment"]["Variables"]
        found = {name: evaluate(variables[name], parameters, conditions) for name in names if name in variables}
        per_function.append(
            {name: value for name, value in found.items() if value != {"Ref": "AWS::NoValue"} and value != ""}
        )
    assert per_function and all(found == per_function[0] for found in per_function), per_function
    return per_function[0]


GUIDED_CLIENT_BACKEND = {
    "ProjectADbUrl": "none",
    "ProjectBDbUrl": "postgresql://client_sync@b.example/postgres",
    "ProjectAUrl": "https://a.supabase.co",
    "ProjectAServiceRoleKey": "service-role-key-a",
    "ProjectBServiceRoleKey": "none",
}


@pytest.mark.parametrize("empty", ["", "none"])
def test_a_database_url_left_empty_or_none_puts_its_project_on_the_client_backend(empty: str) -> None:
    assert backend_environment({**GUIDED_CLIENT_BACKEND, "ProjectADbUrl": empty}) == {
        "PROJECT_B_DB_URL": "postgresql://client_sync@b.example/postgres",
        "PROJECT_A_URL": "https://a.supabase.co",
        "PROJECT_A_SERVICE_ROLE_KEY": "service-role-key-a",
    }


def test_a_database_url_is_the_direct_backend() -> None:
    found = backend_environment({"ProjectADbUrl": "postgresql://client_sync@a.example/postgres"})
    assert found == {"PROJECT_A_DB_URL": "postgresql://client_sync@a.example/postgres"}


def test_a_service_role_key_without_its_url_is_not_given() -> None:
    assert "PROJECT_A_SERVICE_ROLE_KEY" not in backend_environment({"ProjectAServiceRoleKey": "none"})
