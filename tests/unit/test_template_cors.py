"""A browser app calls the API through API Gateway's CORS (template.yaml's AllowedOrigins): its preflight allows
every header the contract (docs/openapi.json) sends, and exposes every header it answers with."""

from __future__ import annotations

from typing import Any

from ops.openapi.document import build
from tests.unit.test_template import load_template


def cors() -> dict[str, Any]:
    configuration = load_template()["Resources"]["HttpApi"]["Properties"]["CorsConfiguration"]
    condition, when_set, otherwise = configuration["Fn::If"]
    assert (condition, otherwise) == ("HasAllowedOrigins", {"Ref": "AWS::NoValue"})
    return dict(when_set)


def test_the_origins_are_the_parameters_and_only_post_is_allowed() -> None:
    found = cors()
    assert found["AllowOrigins"] == {"Fn::Split": [",", {"Ref": "AllowedOrigins"}]}
    assert found["AllowMethods"] == ["POST"]


def test_every_request_header_of_the_contract_is_allowed_and_every_answer_header_exposed() -> None:
    paths = build()["paths"].values()
    sent = {"authorization", "content-type"} | {
        parameter["name"].lower()
        for path in paths
        for parameter in path["post"]["parameters"]
        if parameter["in"] == "header"
    }
    answered = {
        name.lower()
        for path in paths
        for response in path["post"]["responses"].values()
        for name in response.get("headers", {})
    }
    found = cors()
    assert set(found["AllowHeaders"]) == sent
    assert answered - {"allow"} == set(found["ExposeHeaders"])  # Allow answers a method the preflight refuses
