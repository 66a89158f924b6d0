"""template.yaml: valid for cfn-lint, and every function's Handler names a function that exists. No network."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from cfnlint.api import ManualArgs, lint, lint_file

from shared.config import Settings

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"


class CloudFormationLoader(yaml.SafeLoader):
    """A safe loader that reads CloudFormation's short forms (!Ref, !Sub, !GetAtt ...) as their long forms."""


def _intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {"Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}": value}


CloudFormationLoader.add_multi_constructor("!", _intrinsic)


def parse(text: str) -> Any:
    return yaml.load(text, Loader=CloudFormationLoader)  # noqa: S506 - a SafeLoader subclass


def load_template() -> dict[str, Any]:
    return parse(TEMPLATE.read_text())


def serverless_functions() -> dict[str, dict[str, Any]]:
    """Each AWS::Serverless::Function's properties, with Globals.Function filled in."""
    template = load_template()
    defaults = template.get("Globals", {}).get("Function", {})
    return {
        name: {**defaults, **resource.get("Properties", {})}
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def test_the_loader_reads_short_form_intrinsics() -> None:
    loaded = parse("a: !Ref X\nb: !GetAtt F.Arn\nc: !Sub 'x-${Y}'\nd: !If [C, !Ref Z, !Ref AWS::NoValue]\n")
    assert loaded == {
        "a": {"Ref": "X"},
        "b": {"Fn::GetAtt": ["F", "Arn"]},
        "c": {"Fn::Sub": "x-${Y}"},
        "d": {"Fn::If": ["C", {"Ref": "Z"}, {"Ref": "AWS::NoValue"}]},
    }


def test_cfn_lint_finds_no_errors_or_warnings() -> None:
    matches = lint_file(TEMPLATE, ManualArgs(regions=["us-east-1"]))
    problems = [f"{match.rule.id} {match.message} (line {match.linenumber})" for match in matches]
    assert [problem for problem in problems if problem[0] in "EW"] == []


def test_cfn_lint_does_check_serverless_templates() -> None:
    broken = (
        "Transform: AWS::Serverless-2016-10-31\n"
        "Resources:\n"
        "  F:\n"
        "    Type: AWS::Serverless::Function\n"
        "    Properties: {Runtime: python2.7, Handler: main.handler, CodeUri: ., Timeout: 99999}\n"
    )
    assert {match.rule.id[0] for match in lint(broken, regions=["us-east-1"])} == {"E"}


def test_create_session_is_served_at_post_sessions() -> None:
    function = serverless_functions()["CreateSessionFunction"]
    assert function["Handler"] == "functions/create_session/main.lambda_handler"
    assert function["Runtime"] in ("python3.11", "python3.12")
    assert function["Timeout"] >= 15
    [event] = function["Events"].values()
    assert event["Type"] == "HttpApi"
    assert {key: event["Properties"][key] for key in ("Method", "Path", "PayloadFormatVersion")} == {
        "Method": "POST",
        "Path": "/sessions",
        "PayloadFormatVersion": "2.0",
    }


@pytest.mark.parametrize("name", sorted(serverless_functions()))
def test_handler_points_to_a_function_in_an_existing_file(name: str) -> None:
    function = serverless_functions()[name]
    module, _, attribute = function["Handler"].rpartition(".")
    source = ROOT / function["CodeUri"] / f"{module}.py"
    assert source.is_file(), f"{name}: {source.relative_to(ROOT)} does not exist"

    tree = ast.parse(source.read_text(), filename=str(source))
    defined = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    assert attribute in defined, f"{name}: {module}.py defines no top-level function {attribute}"
    assert len(defined[attribute].args.args) == 2, f"{name}: {attribute} must take (event, context)"

    if (ROOT / function["CodeUri"]).resolve() == ROOT:
        # What the Lambda runtime does with the Handler: import the module path, look the name up.
        handler = getattr(importlib.import_module(module.replace("/", ".")), attribute)
        assert callable(handler)


def test_function_timeout_is_the_settings_function_timeout() -> None:
    # Settings refuse a worst case at or over function_timeout_seconds: it must be the Lambda's real Timeout.
    default = Settings.model_fields["function_timeout_seconds"].default
    assert load_template()["Globals"]["Function"]["Timeout"] == default
    for name, function in serverless_functions().items():
        assert function["Timeout"] == default, name


def test_the_jwt_issuer_is_a_required_parameter_given_to_create_session() -> None:
    parameter = load_template()["Parameters"]["ProjectAJwtIssuer"]
    assert "Default" not in parameter
    assert "https://<project-ref>.supabase.co/auth/v1" in parameter["Description"]
    pattern = re.compile(parameter["AllowedPattern"])
    assert pattern.fullmatch("https://abcdefghijklmnop.supabase.co/auth/v1")
    for wrong in ("", "http://abcdefghijklmnop.supabase.co/auth/v1", "https://abcdefghijklmnop.supabase.co"):
        assert not pattern.fullmatch(wrong), wrong
    variables = serverless_functions()["CreateSessionFunction"]["Environment"]["Variables"]
    assert variables["JWT_ISSUER"] == {"Ref": "ProjectAJwtIssuer"}


def _resources_of_type(kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in load_template()["Resources"].items() if r["Type"] == kind}


def test_the_queues_are_encrypted_with_a_rotated_customer_managed_key() -> None:
    [(key_name, key)] = _resources_of_type("AWS::KMS::Key").items()
    assert key["Properties"]["EnableKeyRotation"] is True
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    root = {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}
    [admin] = [s for s in statements if s["Principal"] == {"AWS": root}]
    assert (admin["Effect"], admin["Action"], admin["Resource"]) == ("Allow", "kms:*", "*")
    [sqs] = [s for s in statements if s["Principal"] == {"Service": "sqs.amazonaws.com"}]
    assert set(sqs["Action"]) == {"kms:GenerateDataKey", "kms:Decrypt"}
    assert sqs["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}

    queues = _resources_of_type("AWS::SQS::Queue")
    assert set(queues) == {"SyncRetryQueue", "SyncRetryDeadLetterQueue"}
    for name, queue in queues.items():
        assert queue["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key_name, "Arn"]}, name
        assert "SqsManagedSseEnabled" not in queue["Properties"], name


def test_functions_that_send_to_the_queue_may_use_its_key() -> None:
    [key_name] = _resources_of_type("AWS::KMS::Key")
    senders = {
        name: function
        for name, function in serverless_functions().items()
        if any("SQSSendMessagePolicy" in policy for policy in function.get("Policies", []))
    }
    assert set(senders) == {"ProjectBWebhookFunction"}
    for name, function in senders.items():
        statements = [s for policy in function["Policies"] for s in policy.get("Statement", [])]
        allowed = {
            action
            for s in statements
            if s["Effect"] == "Allow" and s["Resource"] == {"Fn::GetAtt": [key_name, "Arn"]}
            for action in s["Action"]
        }
        assert {"kms:GenerateDataKey", "kms:Decrypt"} <= allowed, name
