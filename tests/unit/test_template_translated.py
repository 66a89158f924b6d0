"""template.yaml as CloudFormation runs it: transformed by SAM's own translator (aws-sam-translator, what
`sam deploy` and CloudFormation's transform use), with the code where `sam package` puts it. Each Lambda
function's handler imports and is callable, and each role allows what its function calls and nothing more."""

from __future__ import annotations

import importlib
import inspect
from functools import lru_cache
from typing import Any

import pytest
from samtranslator.translator.transform import transform

from tests.unit.test_template import load_template

PARAMETERS = {
    "ProjectAJwtSecret": "x" * 32,
    "ProjectBWebhookSecret": "y" * 32,
    "ProjectAJwtIssuer": "https://project-a.supabase.co/auth/v1",
}
BASIC_EXECUTION = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
SQS_EXECUTION = "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole"
KMS = {"kms:GenerateDataKey", "kms:Decrypt"}
SEND = {"sqs:SendMessage*"}  # SAM's SQSSendMessagePolicy: SendMessage and SendMessageBatch
POLL = {
    "sqs:ChangeMessageVisibility",
    "sqs:ChangeMessageVisibilityBatch",
    "sqs:DeleteMessage",
    "sqs:DeleteMessageBatch",
    "sqs:GetQueueAttributes",
    "sqs:ReceiveMessage",
}
# What each function calls beyond its logs: create_session nothing; the webhook sends to the queue; sync_client
# consumes it (its event source mapping, with the managed SQS execution role) and sends to it. The queue is
# encrypted with the stack's key.
ALLOWED = {
    "CreateSessionFunction": (set(), {BASIC_EXECUTION}),
    "ProjectBWebhookFunction": (SEND | KMS, {BASIC_EXECUTION}),
    "SyncClientFunction": (POLL | SEND | KMS, {BASIC_EXECUTION, SQS_EXECUTION}),
}


class _ManagedPolicies:
    """The ARNs of AWS managed policies the translator may look up by name (it would otherwise ask IAM)."""

    def load(self) -> dict[str, str]:
        return {"AWSLambdaBasicExecutionRole": BASIC_EXECUTION, "AWSLambdaSQSQueueExecutionRole": SQS_EXECUTION}


@lru_cache(maxsize=1)
def translated() -> dict[str, Any]:
    template = load_template()
    template["Globals"]["Function"]["CodeUri"] = "s3://artifacts/client-sync.zip"  # as `sam package` leaves it
    return transform(template, dict(PARAMETERS), _ManagedPolicies())


def _resources(kind: str) -> dict[str, Any]:
    return {name: r["Properties"] for name, r in translated()["Resources"].items() if r["Type"] == kind}


@pytest.fixture(autouse=True)
def region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")  # the translator's pseudo parameters; no call is made


def test_the_translated_template_has_the_three_functions_on_a_current_python() -> None:
    functions = _resources("AWS::Lambda::Function")
    assert set(functions) == set(ALLOWED)
    for name, function in functions.items():
        runtime = function["Runtime"]
        assert runtime.startswith("python3.") and int(runtime.split(".")[1]) >= 11, name


@pytest.mark.parametrize("name", sorted(ALLOWED))
def test_each_handler_path_imports_and_is_callable(name: str) -> None:
    module, _, attribute = _resources("AWS::Lambda::Function")[name]["Handler"].rpartition(".")
    handler = getattr(importlib.import_module(module.replace("/", ".")), attribute)
    assert callable(handler)
    assert list(inspect.signature(handler).parameters) == ["event", "context"]


@pytest.mark.parametrize("name", sorted(ALLOWED))
def test_each_role_allows_what_its_function_calls_and_nothing_more(name: str) -> None:
    function = _resources("AWS::Lambda::Function")[name]
    role = _resources("AWS::IAM::Role")[function["Role"]["Fn::GetAtt"][0]]
    statements = [s for policy in role.get("Policies", []) for s in policy["PolicyDocument"]["Statement"]]
    actions = {
        action
        for statement in statements
        if statement["Effect"] == "Allow"
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    }
    assert "*" not in actions and not any(action.endswith(":*") for action in actions)
    assert all(statement["Resource"] != "*" for statement in statements), "a statement on every resource"
    assert (actions, set(role["ManagedPolicyArns"])) == ALLOWED[name]
