"""The processes `make dev` serves: the local SQS, the three functions, the webhook relay, the Lambda runtime,
Project B's Auth stand-in and, with the supabase backend, each project's PostgREST stand-in."""

from __future__ import annotations

import json
import shlex
import socket
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import psutil

from devtools.config import BIN, HOST, ROOT, DevConfig
from devtools.console import say
from devtools.errors import StackFailed
from devtools.processes import spawn

# moto's server stands in for SQS; its queues live in moto's default account.
SQS_ACCOUNT = "123456789012"
RETRY_QUEUE_NAME = "client-sync-retry"
DEAD_LETTER_QUEUE_NAME = "client-sync-retry-dead-letter"
MAX_RECEIVE_COUNT = 10  # template.yaml's RedrivePolicy

# Whose settings a service gets (Stack builds them): the functions' (PROJECT_A_DB_URL and PROJECT_B_DB_URL as
# client_sync, or with the supabase backend PROJECT_X_URL, PROJECT_X_SERVICE_ROLE_KEY and PROJECT_X_BACKEND=client),
# the administrator's PROJECT_A_DB_URL and PROJECT_B_DB_URL, a project's PostgREST stand-in's (PGRST_DB_URI as
# authenticator, PGRST_JWT_SECRET), or Project B's Auth stand-in's (GOTRUE_DB_DATABASE_URL as supabase_auth_admin,
# GOTRUE_JWT_SECRET). The functions also get PROJECT_B_AUTH_URL and PROJECT_B_SERVICE_ROLE_KEY, for invites.
Login = Literal["functions", "admin", "postgrest_project_a", "postgrest_project_b", "auth_project_b"]


@dataclass(frozen=True)
class Service:
    """A process `make dev` runs from the repository root.

    `port`: it is ready once it accepts connections there. `url_variable`: the env file entry with its URL, which
    ends in `path`. `env`: added to the common environment. `login`: whose settings it gets (Login), or none.
    """

    name: str
    argv: tuple[str, ...]
    port: int | None = None
    url_variable: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    login: Login | None = None
    path: str = ""

    @property
    def url(self) -> str | None:
        return f"http://{HOST}:{self.port}{self.path}" if self.port is not None else None


def function(name: str, port: int) -> Service:
    """functions/<name>/main.py served by functions-framework, target `name`; its URL is <NAME>_URL."""
    return Service(
        name=name,
        argv=(
            str(BIN / "functions-framework"),
            "--target",
            name,
            "--source",
            f"functions/{name}/main.py",
            "--host",
            HOST,
            "--port",
            str(port),
        ),
        port=port,
        url_variable=f"{name.upper()}_URL",
        login="functions",
    )


def postgrest(project: Literal["project_a", "project_b"], port: int) -> Service:
    """The project's API: devtools/postgrest.py, its database URL and JWT secret in its environment (never in its
    arguments, which are printed); its URL is PROJECT_X_URL."""
    return Service(
        name=f"{project}_api",
        argv=(sys.executable, "-m", "devtools.postgrest", "--host", HOST, "--port", str(port)),
        port=port,
        url_variable=f"{project.upper()}_URL",
        login="postgrest_project_a" if project == "project_a" else "postgrest_project_b",
    )


def auth_admin(port: int) -> Service:
    """Project B's Auth API: devtools/auth_admin.py, logged in to Project B's database as supabase_auth_admin, its
    mail in DEV_MAIL_DIR; its URL, ending in /auth/v1, is PROJECT_B_AUTH_URL."""
    return Service(
        name="project_b_auth",
        argv=(sys.executable, "-m", "devtools.auth_admin", "--host", HOST, "--port", str(port)),
        port=port,
        url_variable="PROJECT_B_AUTH_URL",
        login="auth_project_b",
        path="/auth/v1",
    )


def sqs_endpoint(config: DevConfig) -> str:
    return f"http://{HOST}:{config.sqs_port}"


def retry_queue_url(config: DevConfig) -> str:
    return f"{sqs_endpoint(config)}/{SQS_ACCOUNT}/{RETRY_QUEUE_NAME}"


def dead_letter_queue_url(config: DevConfig) -> str:
    return f"{sqs_endpoint(config)}/{SQS_ACCOUNT}/{DEAD_LETTER_QUEUE_NAME}"


def aws_env(config: DevConfig) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL_SQS": sqs_endpoint(config),
        "AWS_ACCESS_KEY_ID": "dev",
        "AWS_SECRET_ACCESS_KEY": "dev",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def servers(config: DevConfig) -> tuple[Service, ...]:
    """What serves on a port, started together (the projects' APIs first: with the supabase backend, the PostgREST
    stand-ins; with either, Project B's Auth stand-in)."""
    apis = (
        (postgrest("project_a", config.project_a_api_port), postgrest("project_b", config.project_b_api_port))
        if config.backend == "supabase"
        else ()
    )
    return (
        *apis,
        auth_admin(config.project_b_auth_port),
        Service("local_sqs", (str(BIN / "moto_server"), "-H", HOST, "-p", str(config.sqs_port)), port=config.sqs_port),
        function("create_session", config.create_session_port),
        function("sync_client", config.sync_client_port),
        function("project_b_webhook", config.project_b_webhook_port),
    )


# Sends what Project B's database webhook queued (devtools/webhook_relay.py), as pg_net does: it stands in for part
# of the platform, so it reads net.http_request_queue as the administrator. Started once the servers answer, so
# that nothing it sends meets a closed port.
WEBHOOK_RELAY = Service("webhook_relay", (sys.executable, "-m", "devtools.webhook_relay"), login="admin")

# What AWS runs around sync_client (devtools/lambda_runtime.py): the SQS event source mapping, feeding the queue's
# messages to its Lambda handler, and the EventBridge schedule of reconcile. Started once the queue exists.
# The invocations get sync_client's Timeout, as template.yaml's SyncClientFunction sets it.
SYNC_CLIENT_LAMBDA_ENV = {"FUNCTION_TIMEOUT_SECONDS": "120"}
QUEUE_POLLER = Service(
    "queue_poller",
    (sys.executable, "-m", "devtools.lambda_runtime", "poll"),
    login="functions",
    env=SYNC_CLIENT_LAMBDA_ENV,
)
RECONCILE_SCHEDULE = Service(
    "reconcile_schedule",
    (sys.executable, "-m", "devtools.lambda_runtime", "schedule"),
    login="functions",
    env=SYNC_CLIENT_LAMBDA_ENV,
)


@dataclass
class Running:
    service: Service
    process: subprocess.Popen[bytes]


def start_service(service: Service, env: Mapping[str, str], logins: Mapping[str, Mapping[str, str]]) -> Running:
    """`logins`: the settings of each Login, for the service's `login` (not printed: they carry passwords, keys)."""
    say(f"Starting {service.name}: {' '.join(shlex.quote(part) for part in service.argv)}")
    settings = logins[service.login] if service.login else {}
    return Running(service, spawn(service.argv, cwd=ROOT, env={**env, **settings, **service.env}))


def answers(port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


def port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return True
    return False


def _holder(port: int) -> str:
    """Who listens on `port`, when the system tells."""
    try:
        for connection in psutil.net_connections(kind="tcp"):
            if connection.laddr and connection.laddr.port == port and connection.status == psutil.CONN_LISTEN:
                if connection.pid is None:
                    return ""
                process = psutil.Process(connection.pid)
                return f" by pid {connection.pid} ({' '.join(process.cmdline())[:100]})"
    except (psutil.Error, OSError):
        pass
    return ""


def check_ports(services: tuple[Service, ...]) -> None:
    taken = [service for service in services if service.port is not None and port_taken(service.port)]
    if taken:
        names = ", ".join(f"{HOST}:{service.port} ({service.name}){_holder(service.port or 0)}" for service in taken)
        raise StackFailed(
            f"Port already in use: {names}. Stop whatever holds it (another `make dev`?), or set DEV_PORT_BASE."
        )


def create_retry_queue(config: DevConfig) -> None:
    import boto3
    from botocore.config import Config

    env = aws_env(config)
    sqs = boto3.client(
        "sqs",
        endpoint_url=sqs_endpoint(config),
        region_name=env["AWS_DEFAULT_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        config=Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 2}),
    )
    dead_letter = sqs.create_queue(QueueName=DEAD_LETTER_QUEUE_NAME)["QueueUrl"]
    dead_letter_arn = sqs.get_queue_attributes(QueueUrl=dead_letter, AttributeNames=["QueueArn"])["Attributes"]
    redrive = {"deadLetterTargetArn": dead_letter_arn["QueueArn"], "maxReceiveCount": str(MAX_RECEIVE_COUNT)}
    url = sqs.create_queue(QueueName=RETRY_QUEUE_NAME, Attributes={"RedrivePolicy": json.dumps(redrive)})["QueueUrl"]
    say(f"Retry queue {url}")
