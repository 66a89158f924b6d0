"""template.yaml: valid for cfn-lint; every function's Handler names a function that exists; each function's
Timeout is the one its settings check against; the routes, the retry queue's consumer and senders, the schedule.
No network."""

from __future__ import annotations

import ast
import importlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from cfnlint.api import ManualArgs, lint, lint_file
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from shared.config import Settings

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
# API Gateway's HTTP API answers 503 itself after 30 s: a request must have its own answer by then.
HTTP_API_TIMEOUT_SECONDS = 30
RETRY_QUEUE = "SyncRetryQueue"


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
    """Each AWS::Serverless::Function's properties, with Globals.Function filled in (environment variables merged,
    as SAM merges maps)."""
    template = load_template()
    defaults = template.get("Globals", {}).get("Function", {})
    functions = {}
    for name, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function":
            properties = resource.get("Properties", {})
            variables = {
                **defaults.get("Environment", {}).get("Variables", {}),
                **properties.get("Environment", {}).get("Variables", {}),
            }
            functions[name] = {**defaults, **properties, "Environment": {"Variables": variables}}
    return functions


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


# What an intrinsic in an event's properties stands for, by property (others: an ARN).
EVENT_PLACEHOLDERS = {"Schedule": "rate(5 minutes)", "ApiId": "a1b2c3d4e5"}


def _without_intrinsics(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        if len(value) == 1 and next(iter(value)) in ("Ref", "Fn::GetAtt", "Fn::Sub", "Fn::If"):
            return EVENT_PLACEHOLDERS.get(key, "arn:aws:sqs:us-east-1:123456789012:placeholder")
        return {name: _without_intrinsics(item, name) for name, item in value.items()}
    if isinstance(value, list):
        return [_without_intrinsics(item, key) for item in value]
    return value


def test_cfn_lint_finds_nothing_in_the_events_either() -> None:
    # cfn-lint does not check a SAM event's properties when one of them is an intrinsic (the queue's !GetAtt, the
    # API's !Ref, the schedule's parameter): check them again with each intrinsic replaced by a literal.
    template = load_template()
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            for event in resource["Properties"].get("Events", {}).values():
                event["Properties"] = _without_intrinsics(event["Properties"])
    matches = lint(json.dumps(template), regions=["us-east-1"])
    assert [f"{match.rule.id} {match.message}" for match in matches if match.rule.id[0] in "EW"] == []


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


class TemplateSettings(Settings):
    """Settings from the given values only, never from this process's environment."""

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource, *args: Any, **kwargs: Any
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def literal_environment(function: dict[str, Any]) -> dict[str, Any]:
    """The function's environment variables that the template sets to a literal (parameters and refs left out)."""
    variables = function.get("Environment", {}).get("Variables", {})
    return {name.lower(): value for name, value in variables.items() if isinstance(value, (str, int, float))}


def events_of_type(function: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [event["Properties"] for event in function.get("Events", {}).values() if event["Type"] == kind]


@pytest.mark.parametrize("name", sorted(serverless_functions()))
def test_each_function_tells_the_settings_its_timeout(name: str) -> None:
    # Settings refuse a worst case at or over function_timeout_seconds: it must be the Lambda's real Timeout,
    # and the settings the function runs with must pass that check.
    function = serverless_functions()[name]
    settings = TemplateSettings(**literal_environment(function))
    assert settings.function_timeout_seconds == function["Timeout"], "FUNCTION_TIMEOUT_SECONDS != Timeout"
    assert settings.worst_case_request_seconds < function["Timeout"]


@pytest.mark.parametrize(
    "name", sorted(name for name, function in serverless_functions().items() if events_of_type(function, "HttpApi"))
)
def test_an_http_request_answers_before_the_http_api_gives_up(name: str) -> None:
    # A request (not a job: no job budget) must end within HTTP API's 30 s, whatever the function's Timeout.
    settings = {
        **literal_environment(serverless_functions()[name]),
        "sync_job_budget_seconds": 1e-3,
        "function_timeout_seconds": HTTP_API_TIMEOUT_SECONDS,
    }
    TemplateSettings(**settings)


def test_the_timeout_checks_can_fail() -> None:
    # What the two tests above rely on: the validator refuses a Timeout the worst case does not fit in.
    with pytest.raises(ValueError, match="FUNCTION_TIMEOUT_SECONDS"):
        TemplateSettings(function_timeout_seconds=120, sync_job_budget_seconds=120)
    with pytest.raises(ValueError, match="FUNCTION_TIMEOUT_SECONDS"):
        TemplateSettings(function_timeout_seconds=20)


def test_sync_client_is_served_at_post_sync() -> None:
    template = load_template()
    function = serverless_functions()["SyncClientFunction"]
    assert function["Handler"] == "functions/sync_client/main.lambda_handler"
    assert function["CodeUri"] == serverless_functions()["CreateSessionFunction"]["CodeUri"] == "."
    [event] = events_of_type(function, "HttpApi")
    assert {key: event[key] for key in ("ApiId", "Method", "Path", "PayloadFormatVersion")} == {
        "ApiId": {"Ref": "HttpApi"},
        "Method": "POST",
        "Path": "/sync",
        "PayloadFormatVersion": "2.0",
    }
    assert template["Outputs"]["SyncClientUrl"]["Value"]["Fn::Sub"].endswith("}/sync")


def test_sync_client_verifies_tokens_as_create_session_does_and_knows_the_queue() -> None:
    functions = serverless_functions()
    sync, create = (
        functions[name]["Environment"]["Variables"] for name in ("SyncClientFunction", "CreateSessionFunction")
    )
    for variable in ("PROJECT_A_JWT_SECRET", "PROJECT_A_JWKS_URL", "JWT_ISSUER"):
        assert sync[variable] == create[variable], variable
    assert sync["SYNC_RETRY_QUEUE_URL"] == {"Ref": RETRY_QUEUE}


def test_sync_client_consumes_the_retry_queue_one_message_at_a_time_reporting_failures() -> None:
    [event] = events_of_type(serverless_functions()["SyncClientFunction"], "SQS")
    assert event["Queue"] == {"Fn::GetAtt": [RETRY_QUEUE, "Arn"]}
    # The handler answers with batchItemFailures instead of raising: without this, failed messages are deleted.
    assert event["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # handle_sqs gives a whole batch one deadline, and the settings check one message's worst case.
    assert event["BatchSize"] == 1
    assert 2 <= event["ScalingConfig"]["MaximumConcurrency"] <= 20


@pytest.mark.parametrize(
    "name", sorted(name for name, function in serverless_functions().items() if events_of_type(function, "SQS"))
)
def test_a_queue_stays_invisible_while_its_consumer_may_still_run(name: str) -> None:
    function = serverless_functions()[name]
    queues = _resources_of_type("AWS::SQS::Queue")
    for event in events_of_type(function, "SQS"):
        assert event.get("FunctionResponseTypes") == ["ReportBatchItemFailures"], name
        queue = queues[event["Queue"]["Fn::GetAtt"][0]]["Properties"]
        running = function["Timeout"] + event.get("MaximumBatchingWindowInSeconds", 0)
        # AWS refuses the event source mapping below the function's Timeout; 6 x is its recommendation.
        assert queue["VisibilityTimeout"] >= running
        assert queue["VisibilityTimeout"] >= 6 * running
        # A message that keeps failing reaches the dead-letter queue, after retries spread over an hour or more.
        redrive = queue["RedrivePolicy"]
        dead_letter = queues[redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]]["Properties"]
        assert 3 <= redrive["maxReceiveCount"] <= 20
        assert redrive["maxReceiveCount"] * queue["VisibilityTimeout"] >= 3600
        assert dead_letter["MessageRetentionPeriod"] >= queue["MessageRetentionPeriod"]


def test_sync_client_reconciles_on_the_schedule_parameter() -> None:
    parameter = load_template()["Parameters"]["ReconcileSchedule"]
    assert parameter["Default"] == "rate(5 minutes)"
    pattern = re.compile(parameter["AllowedPattern"])
    for good in ("rate(5 minutes)", "rate(1 minute)", "rate(2 hours)", "cron(0/10 * * * ? *)"):
        assert pattern.fullmatch(good), good
    for wrong in ("", "rate(1 minutes)", "rate(5 minute)", "rate(0 minutes)", "every 5 minutes"):
        assert not pattern.fullmatch(wrong), wrong
    [event] = events_of_type(serverless_functions()["SyncClientFunction"], "Schedule")
    assert event["Schedule"] == {"Ref": "ReconcileSchedule"}
    assert event.get("Enabled", True) is True


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


def _policies(function: dict[str, Any], template: str) -> list[Any]:
    return [policy[template] for policy in function.get("Policies", []) if template in policy]


def _key_actions(function: dict[str, Any], key_name: str) -> set[str]:
    statements = [s for policy in _policies(function, "Statement") for s in policy]
    return {
        action
        for s in statements
        if s["Effect"] == "Allow" and s["Resource"] == {"Fn::GetAtt": [key_name, "Arn"]}
        for action in s["Action"]
    }


def test_functions_that_send_to_the_queue_may_use_its_key() -> None:
    [key_name] = _resources_of_type("AWS::KMS::Key")
    senders = {
        name: function
        for name, function in serverless_functions().items()
        if _policies(function, "SQSSendMessagePolicy")
    }
    assert set(senders) == {"ProjectBWebhookFunction", "SyncClientFunction"}
    for name, function in senders.items():
        assert _policies(function, "SQSSendMessagePolicy") == [
            {"QueueName": {"Fn::GetAtt": [RETRY_QUEUE, "QueueName"]}}
        ]
        assert function["Environment"]["Variables"]["SYNC_RETRY_QUEUE_URL"] == {"Ref": RETRY_QUEUE}, name
        assert {"kms:GenerateDataKey", "kms:Decrypt"} <= _key_actions(function, key_name), name


def test_functions_that_consume_the_queue_may_poll_it_and_decrypt() -> None:
    [key_name] = _resources_of_type("AWS::KMS::Key")
    consumers = {name: function for name, function in serverless_functions().items() if events_of_type(function, "SQS")}
    assert set(consumers) == {"SyncClientFunction"}
    for name, function in consumers.items():
        polled = {event["Queue"]["Fn::GetAtt"][0] for event in events_of_type(function, "SQS")}
        allowed = {policy["QueueName"]["Fn::GetAtt"][0] for policy in _policies(function, "SQSPollerPolicy")}
        assert polled <= allowed, name
        assert "kms:Decrypt" in _key_actions(function, key_name), name


def test_make_devs_lambda_runtime_gives_sync_client_its_deployed_timeout() -> None:
    from devtools.services import SYNC_CLIENT_LAMBDA_ENV

    function = serverless_functions()["SyncClientFunction"]
    assert SYNC_CLIENT_LAMBDA_ENV["FUNCTION_TIMEOUT_SECONDS"] == str(function["Timeout"])
    assert literal_environment(function)["function_timeout_seconds"] == str(function["Timeout"])


def test_sam_builds_each_function_with_the_makefile_target_of_its_name() -> None:
    """Only what runs is packaged (tests/integration/test_package.py builds the targets and checks)."""
    template = load_template()
    makefile = (ROOT / "Makefile").read_text()
    for name in serverless_functions():
        assert template["Resources"][name].get("Metadata", {}).get("BuildMethod") == "makefile", name
        assert f"\nbuild-{name}:" in makefile, name


def test_any_message_in_the_dead_letter_queue_raises_an_alarm_on_the_alarm_topic() -> None:
    name, alarm = "DeadLetterQueueAlarm", _resources_of_type("AWS::CloudWatch::Alarm")["DeadLetterQueueAlarm"]
    properties = alarm["Properties"]
    assert (properties["Namespace"], properties["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert properties["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["SyncRetryDeadLetterQueue", "QueueName"]}}
    ]
    assert (properties["ComparisonOperator"], properties["Threshold"]) == ("GreaterThanThreshold", 0)
    assert (properties["Statistic"], properties["Period"], properties["EvaluationPeriods"]) == ("Maximum", 60, 1)
    assert properties["AlarmActions"] == [{"Ref": "AlarmTopic"}], name
    [topic] = _resources_of_type("AWS::SNS::Topic")
    assert topic == "AlarmTopic"
    [subscription] = _resources_of_type("AWS::SNS::Subscription").values()
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"]["Endpoint"] == {"Ref": "AlarmEmail"}


# What each function needs of the secrets and settings the template can give: the projects (either backend) for
# all three; the verification of access tokens for the two that take them; the webhook's secret for the webhook;
# the queue for the two that send to it.
PROJECTS = {"PROJECT_A_DB_URL", "PROJECT_B_DB_URL", "PROJECT_A_SERVICE_ROLE_KEY", "PROJECT_B_SERVICE_ROLE_KEY"}
PROJECT_URLS = {"PROJECT_A_URL", "PROJECT_B_URL"}
TOKENS = {"PROJECT_A_JWT_SECRET", "PROJECT_A_JWKS_URL", "JWT_ISSUER"}
NEEDS = {
    "CreateSessionFunction": PROJECTS | PROJECT_URLS | TOKENS,
    "ProjectBWebhookFunction": PROJECTS | PROJECT_URLS | {"PROJECT_B_WEBHOOK_SECRET", "SYNC_RETRY_QUEUE_URL"},
    "SyncClientFunction": PROJECTS | PROJECT_URLS | TOKENS | {"SYNC_RETRY_QUEUE_URL", "SYNC_DEAD_LETTER_QUEUE_URL"},
}
SECRETS = ("_DB_URL", "_KEY", "_SECRET")


def test_every_variable_the_template_sets_is_a_setting_the_code_reads() -> None:
    known = {name.upper() for name in Settings.model_fields}
    for name, function in serverless_functions().items():
        given = set(function.get("Environment", {}).get("Variables", {}))
        assert given <= known, f"{name}: {sorted(given - known)} are not settings (shared/config.py)"


@pytest.mark.parametrize("name", sorted(NEEDS))
def test_each_function_gets_the_settings_it_reads_and_no_secret_it_does_not_use(name: str) -> None:
    given = set(serverless_functions()[name].get("Environment", {}).get("Variables", {}))
    assert NEEDS[name] <= given, f"{name} lacks {sorted(NEEDS[name] - given)}"
    secrets = {variable for variable in given if variable.endswith(SECRETS)}
    assert secrets <= NEEDS[name], f"{name} gets secrets it does not use: {sorted(secrets - NEEDS[name])}"


def test_sync_client_may_read_the_dead_letter_queues_depth_for_its_status() -> None:
    function = serverless_functions()["SyncClientFunction"]
    statements = [s for policy in _policies(function, "Statement") for s in policy]
    dead_letter = {"Fn::GetAtt": ["SyncRetryDeadLetterQueue", "Arn"]}
    assert [s["Action"] for s in statements if s["Resource"] == dead_letter] == ["sqs:GetQueueAttributes"]
    assert function["Environment"]["Variables"]["SYNC_DEAD_LETTER_QUEUE_URL"] == {"Ref": "SyncRetryDeadLetterQueue"}


def test_the_lag_alarm_watches_the_metric_sync_client_writes_and_a_missing_one_too() -> None:
    from shared.metrics import NAMESPACE

    properties = _resources_of_type("AWS::CloudWatch::Alarm")["LagAlarm"]["Properties"]
    assert (properties["Namespace"], properties["MetricName"]) == (NAMESPACE, "LagSeconds")
    assert properties["Dimensions"] == [{"Name": "Function", "Value": "sync_client"}]
    assert (properties["Threshold"], properties["ComparisonOperator"]) == (
        {"Ref": "MaxLagSeconds"},
        "GreaterThanThreshold",
    )
    assert properties["TreatMissingData"] == "breaching"
    assert properties["Period"] * properties["EvaluationPeriods"] == 900
    assert properties["AlarmActions"] == [{"Ref": "AlarmTopic"}]
