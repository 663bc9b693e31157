"""infra/template.yaml: lint, SAM transform without AWS, deployment into moto's CloudFormation.

What is read back from moto and what is asserted on the transformed template instead (and why):

* moto's CloudFormation has no model for ``AWS::CloudWatch::Alarm``, ``AWS::S3::BucketPolicy`` and
  ``AWS::OpenSearchService::Domain``; it would mark them CREATE_COMPLETE without creating anything.
  The stacks deployed here are therefore a *variant* with exactly those resources removed (and the one
  output that names the alarms); those resources are asserted on the transformed template.
* moto applies only part of some resources' properties when it creates them from CloudFormation:
  S3 bucket: encryption only (not versioning, public access block, ownership, lifecycle);
  DynamoDB table: not PointInTimeRecoverySpecification; Lambda function: not Architectures nor
  LoggingConfig. Those properties are asserted on the transformed template; everything else (the
  event source mapping, tables, queue, function configuration, IAM policies, log group) is read back
  from moto with boto3.
* The function is created from a small stub zip uploaded to moto's S3 (as ``sam package`` would
  upload the real one): creating a function does not need Docker in moto, only invoking it would, and
  nothing here invokes it (tests/integration/test_package.py runs the real zip in the Lambda RIE).
"""

from __future__ import annotations

import ast
import contextlib
import copy
import io
import json
import os
import re
import uuid
import zipfile
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.support.polling import wait_until

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "infra" / "template.yaml"
MOTO = "http://127.0.0.1:5000"
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
EXISTING_DOMAIN_ARN = f"arn:aws:es:{REGION}:{ACCOUNT}:domain/projector-existing"
EXISTING_ENDPOINT = f"https://search-projector-existing-abc123.{REGION}.es.amazonaws.com"

# ---------------------------------------------------------------------------------------------- helpers


def load_template() -> dict[str, Any]:
    """The template as plain JSON data (cfn-lint's decoder understands the short-form !Tags)."""
    from cfnlint.decode import decode_str

    template, problems = decode_str(TEMPLATE.read_text(encoding="utf-8"))
    assert not problems, problems
    return json.loads(json.dumps(template, default=str))


class OfflinePolicyLoader:
    """The SAM translator's managed-policy loader, without IAM: a fixed (empty) map, counting calls.

    The template names no managed policy (its role is explicit), so the translator never needs it;
    ``calls`` proves that.
    """

    def __init__(self) -> None:
        self.calls = 0

    def load(self) -> dict[str, str]:
        self.calls += 1
        return {}


def sam_transform(template: dict[str, Any], parameters: dict[str, str]) -> tuple[dict[str, Any], int]:
    """Translate the SAM template into plain CloudFormation, offline. Returns it and the loader calls."""
    from samtranslator.translator.transform import transform

    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    loader = OfflinePolicyLoader()
    return transform(copy.deepcopy(template), dict(parameters), loader), loader.calls


def client(service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=MOTO,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def without_resources(transformed: dict[str, Any], removed: set[str]) -> dict[str, Any]:
    """A copy of ``transformed`` without ``removed`` (types moto cannot create) and what names them."""
    variant = copy.deepcopy(transformed)
    for logical_id in removed:
        del variant["Resources"][logical_id]
    for resource in variant["Resources"].values():  # moto has no wait-condition handle
        if resource.get("DependsOn") in removed:
            del resource["DependsOn"]
    for output in [key for key, value in variant["Outputs"].items() if references(value) & removed]:
        del variant["Outputs"][output]
    # The dashboard's alarm widget names the alarms' ARNs; moto has no alarms from CloudFormation.
    dashboard = variant["Resources"].get("Dashboard")
    if dashboard is not None:
        dashboard_values = dashboard["Properties"]["DashboardBody"]["Fn::Sub"][1]
        for key, value in list(dashboard_values.items()):
            if references(value) & removed:
                dashboard_values[key] = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{key}"
    return variant


def references(value: Any) -> set[str]:
    """Logical ids named by Ref / Fn::GetAtt / Fn::Sub anywhere in ``value``."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                found.add(inner)
            elif key == "Fn::GetAtt":
                found.add(inner[0] if isinstance(inner, list) else inner.split(".")[0])
            elif key == "Fn::Sub":
                text = inner[0] if isinstance(inner, list) else inner
                found.update(part.split("}")[0].split(".")[0] for part in text.split("${")[1:])
            found |= references(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= references(inner)
    return found


def statements(document: Any) -> list[dict[str, Any]]:
    """A policy document's statements (moto returns inline role policies as a Python repr string)."""
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            document = ast.literal_eval(document)
    found = document["Statement"]
    return found if isinstance(found, list) else [found]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def moto_resource_types() -> set[str]:
    """Resource types moto's CloudFormation can create (the test runs the same moto as the server)."""
    from moto.cloudformation.parsing import get_model_map

    return set(get_model_map())


# ---------------------------------------------------------------------------------------------- lint


def test_cfn_lint_passes_with_one_commented_suppression() -> None:
    from cfnlint.api import lint_file

    matches = lint_file(TEMPLATE)
    assert matches == [], "\n".join(str(match) for match in matches)

    # The only silenced check is W1031 on FunctionRole, with its reason written next to it.
    template = load_template()
    silenced = {
        logical_id: resource["Metadata"]["cfn-lint"]["config"]["ignore_checks"]
        for logical_id, resource in template["Resources"].items()
        if "cfn-lint" in resource.get("Metadata", {})
    }
    assert silenced == {"FunctionRole": ["W1031"]}
    assert "cfn-lint" not in template.get("Metadata", {})
    text = TEMPLATE.read_text(encoding="utf-8")
    comment = text[text.index("ignore_checks:") : text.index("- W1031")]
    assert "W1031 (the only check silenced in this template)" in comment
    assert "ExistingDomainNeedsEndpointAndArn" in comment


@pytest.mark.parametrize("scenario", ["existing-domain-and-stream", "trial-domain-and-table"])
def test_transformed_template_lints_clean_without_the_suppression(scenario: str, tmp_path: Path) -> None:
    """With real parameter values the silenced warning does not exist (the CloudFormation CloudFormation
    actually deploys is the transformed one; cfn-lint applies --parameters only to plain templates)."""
    from cfnlint.api import ManualArgs, lint_file

    parameters = {
        "existing-domain-and-stream": {
            "CreateOpenSearchDomain": "false",
            "OpenSearchEndpoint": EXISTING_ENDPOINT,
            "OpenSearchDomainArn": EXISTING_DOMAIN_ARN,
            "SourceStreamArn": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/orders/stream/2024-05-01T00:00:00",
        },
        "trial-domain-and-table": {
            "CreateOpenSearchDomain": "true",
            "OpenSearchOperatorArn": f"arn:aws:iam::{ACCOUNT}:role/operator",
        },
    }[scenario]
    template = load_template()
    template["Resources"]["FunctionRole"].pop("Metadata")
    template["Resources"]["ProjectorFunction"]["Properties"]["CodeUri"] = (
        "s3://artifacts/projector-lambda.zip"
    )
    transformed, _ = sam_transform(template, parameters)
    path = tmp_path / "transformed.json"
    path.write_text(json.dumps(transformed), encoding="utf-8")
    matches = lint_file(path, config=ManualArgs(parameters=[parameters]))
    assert matches == [], "\n".join(str(match) for match in matches)


# ---------------------------------------------------------------------------------------------- transform


def _transformed(parameters: dict[str, str]) -> dict[str, Any]:
    template = load_template()
    template["Resources"]["ProjectorFunction"]["Properties"]["CodeUri"] = (
        "s3://artifacts/projector-lambda.zip"
    )
    transformed, loader_calls = sam_transform(template, parameters)
    assert loader_calls == 0  # no managed policy is looked up: nothing of AWS is needed
    return transformed


def test_sam_transform_offline_produces_the_expected_resources() -> None:
    out = _transformed({"OpenSearchEndpoint": EXISTING_ENDPOINT, "OpenSearchDomainArn": EXISTING_DOMAIN_ARN})
    assert "Transform" not in out
    types = {logical_id: resource["Type"] for logical_id, resource in out["Resources"].items()}
    assert types == {
        "SourceTable": "AWS::DynamoDB::Table",
        "AggregatesTable": "AWS::DynamoDB::Table",
        "DeadLetterBucket": "AWS::S3::Bucket",
        "DeadLetterBucketPolicy": "AWS::S3::BucketPolicy",
        "OnFailureQueue": "AWS::SQS::Queue",
        "FunctionLogGroup": "AWS::Logs::LogGroup",
        "OpenSearchDomain": "AWS::OpenSearchService::Domain",
        "FunctionRole": "AWS::IAM::Role",
        "EventGapsPolicy": "AWS::IAM::Policy",  # only for an events table source (SourceIsEventsTable)
        "ProjectorFunction": "AWS::Lambda::Function",
        "ProjectorFunctionStream": "AWS::Lambda::EventSourceMapping",
        "IteratorAgeAlarm": "AWS::CloudWatch::Alarm",
        "FunctionErrorsAlarm": "AWS::CloudWatch::Alarm",
        "SkippedBatchesAlarm": "AWS::CloudWatch::Alarm",
        "DeadLetteredAlarm": "AWS::CloudWatch::Alarm",
        "StreamNotDeliveredAlarm": "AWS::CloudWatch::Alarm",
        "Dashboard": "AWS::CloudWatch::Dashboard",
        "RetriesMetricFilter": "AWS::Logs::MetricFilter",
        "OpenSearchThrottledMetricFilter": "AWS::Logs::MetricFilter",
        "OpenSearchServerErrorMetricFilter": "AWS::Logs::MetricFilter",
        "TracingPolicy": "AWS::IAM::Policy",
        "VpcAccessPolicy": "AWS::IAM::Policy",
        "DeadLetterKeyPolicy": "AWS::IAM::Policy",
        "OptionalGrantsReady": "AWS::CloudFormation::WaitConditionHandle",
        # off unless BackfillStateMachineEnabled (test_export_statemachine.py covers them)
        "BackfillFunctionPolicy": "AWS::IAM::Policy",
        "BackfillStateMachineRole": "AWS::IAM::Role",
        "BackfillStateMachine": "AWS::StepFunctions::StateMachine",
    }
    assert out["Resources"]["SourceTable"]["Condition"] == "CreateSourceTable"
    assert out["Resources"]["OpenSearchDomain"]["Condition"] == "CreateDomain"
    gaps = out["Resources"]["EventGapsPolicy"]
    assert gaps["Condition"] == "EventsSource"
    assert [s["Action"] for s in gaps["Properties"]["PolicyDocument"]["Statement"]] == [["dynamodb:Query"]]
    # The role is ours: SAM adds no role, no managed policy, no policy of its own.
    function = out["Resources"]["ProjectorFunction"]["Properties"]
    assert function["Role"] == {"Fn::GetAtt": ["FunctionRole", "Arn"]}
    assert "ManagedPolicyArns" not in out["Resources"]["FunctionRole"]["Properties"]


def test_function_and_mapping_settings_in_the_template() -> None:
    out = _transformed({"OpenSearchEndpoint": EXISTING_ENDPOINT, "OpenSearchDomainArn": EXISTING_DOMAIN_ARN})
    function = out["Resources"]["ProjectorFunction"]["Properties"]
    assert function["Runtime"] == "python3.12"
    assert function["Handler"] == "projector.handler.lambda_handler"
    assert function["Architectures"] == [{"Ref": "Architecture"}]
    assert function["MemorySize"] == 512
    assert function["Timeout"] == 60
    assert function["Code"] == {"S3Bucket": "artifacts", "S3Key": "projector-lambda.zip"}
    assert function["LoggingConfig"] == {
        "LogGroup": {"Ref": "FunctionLogGroup"},
        "LogFormat": "JSON",
        "ApplicationLogLevel": {"Ref": "LogLevel"},
        "SystemLogLevel": "WARN",
    }
    # moto's CloudFormation does not keep TracingConfig: asserted here, on the transformed template.
    assert function["TracingConfig"] == {"Mode": {"Ref": "Tracing"}}
    assert load_template()["Parameters"]["Tracing"]["Default"] == "Active"
    assert function["ReservedConcurrentExecutions"] == {
        "Fn::If": ["HasReservedConcurrency", {"Ref": "ReservedConcurrency"}, {"Ref": "AWS::NoValue"}]
    }
    environment = function["Environment"]["Variables"]
    assert environment["PROJECTOR_OPENSEARCH_AUTH"] == "sigv4"
    assert environment["PROJECTOR_DYNAMODB_ENDPOINT"] == ""
    assert environment["POWERTOOLS_METRICS_NAMESPACE"] == "projector"
    assert set(environment) >= {
        "PROJECTOR_OPENSEARCH_URL",
        "PROJECTOR_OPENSEARCH_AUTH",
        "PROJECTOR_SOURCE_TABLE",
        "PROJECTOR_AGGREGATES_TABLE",
        "PROJECTOR_INDEX_PREFIX",
        "PROJECTOR_DEAD_LETTERS",
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_METRICS_NAMESPACE",
    }
    parameters = load_template()["Parameters"]
    assert parameters["Architecture"]["AllowedValues"] == ["x86_64", "arm64"]
    assert parameters["StartingPosition"]["Default"] == "TRIM_HORIZON"
    assert parameters["MaximumRetryAttempts"]["MinValue"] >= 0  # -1 (forever) is not allowed
    assert parameters["MaximumRecordAgeInSeconds"]["MinValue"] >= 60
    assert parameters["MaximumRecordAgeInSeconds"]["MaxValue"] <= 86400  # finite and within the stream's 24 h

    mapping = out["Resources"]["ProjectorFunctionStream"]["Properties"]
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BisectBatchOnFunctionError"] is True
    assert mapping["Enabled"] == {"Ref": "StreamProcessingEnabled"}
    assert mapping["MaximumRetryAttempts"] == {"Ref": "MaximumRetryAttempts"}
    assert mapping["MaximumRecordAgeInSeconds"] == {"Ref": "MaximumRecordAgeInSeconds"}
    assert mapping["DestinationConfig"] == {
        "OnFailure": {"Destination": {"Fn::GetAtt": ["OnFailureQueue", "Arn"]}}
    }
    assert mapping["StartingPosition"] == {"Ref": "StartingPosition"}
    assert mapping["ParallelizationFactor"] == {"Ref": "ParallelizationFactor"}
    assert mapping["EventSourceArn"] == {
        "Fn::If": [
            "CreateSourceTable",
            {"Fn::GetAtt": ["SourceTable", "StreamArn"]},
            {"Ref": "SourceStreamArn"},
        ]
    }

    # Every mapping setting carries a comment saying why.
    text = TEMPLATE.read_text(encoding="utf-8")
    events = text[text.index("      Events:") : text.index("  # ------", text.index("      Events:"))]
    for setting in (
        "ParallelizationFactor",
        "FunctionResponseTypes",
        "BisectBatchOnFunctionError",
        "MaximumRetryAttempts",
        "DestinationConfig",
    ):
        block = events[: events.index(f"            {setting}:")]
        assert block.rstrip().splitlines()[-1].strip().startswith("#"), f"{setting} has no comment"
    for setting in ("MemorySize", "Timeout"):
        block = text[: text.index(f"      {setting}:")]
        assert block.rstrip().splitlines()[-1].strip().startswith("#"), f"{setting} has no comment"


def test_storage_queue_and_bucket_settings_in_the_template() -> None:
    out = _transformed({"OpenSearchEndpoint": EXISTING_ENDPOINT, "OpenSearchDomainArn": EXISTING_DOMAIN_ARN})
    resources = out["Resources"]
    source = resources["SourceTable"]["Properties"]
    assert source["KeySchema"] == [{"AttributeName": "order_id", "KeyType": "HASH"}]
    assert source["AttributeDefinitions"] == [{"AttributeName": "order_id", "AttributeType": "S"}]
    assert source["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert source["BillingMode"] == "PAY_PER_REQUEST"
    assert source["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert resources["SourceTable"]["DeletionPolicy"] == "Retain"
    aggregates = resources["AggregatesTable"]["Properties"]
    assert aggregates["TableName"] == {"Ref": "AggregatesTableName"}
    assert aggregates["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert aggregates["BillingMode"] == "PAY_PER_REQUEST"
    assert aggregates["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}

    queue = resources["OnFailureQueue"]["Properties"]
    assert queue["SqsManagedSseEnabled"] is True

    bucket = resources["DeadLetterBucket"]
    assert bucket["DeletionPolicy"] == "Retain"
    props = bucket["Properties"]
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
        "ServerSideEncryptionByDefault"
    ] == {
        "Fn::If": [
            "HasDeadLetterKey",
            {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": {"Ref": "DeadLetterKmsKeyArn"}},
            {"SSEAlgorithm": "AES256"},
        ]
    }
    assert resources["OnFailureQueue"]["DeletionPolicy"] == "Retain"
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    rules = {rule["Id"]: rule for rule in props["LifecycleConfiguration"]["Rules"]}
    redriven = rules["expire-redriven-dead-letters"]
    assert redriven["Status"] == "Enabled"
    assert redriven["Prefix"] == "dead-letters/redriven/"
    assert redriven["ExpirationInDays"] == {"Ref": "RedrivenRetentionInDays"}
    assert rules["expire-old-versions"]["NoncurrentVersionExpiration"] == {
        "NoncurrentDays": {"Ref": "RedrivenRetentionInDays"}
    }

    policy = resources["DeadLetterBucketPolicy"]["Properties"]
    assert policy["Bucket"] == {"Ref": "DeadLetterBucket"}
    tls = {statement["Sid"]: statement for statement in policy["PolicyDocument"]["Statement"]}
    insecure = tls["DenyInsecureTransport"]
    assert insecure["Effect"] == "Deny" and insecure["Principal"] == "*" and insecure["Action"] == "s3:*"
    assert insecure["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert insecure["Resource"] == [
        {"Fn::GetAtt": ["DeadLetterBucket", "Arn"]},
        {"Fn::Sub": "${DeadLetterBucket.Arn}/*"},
    ]
    assert tls["DenyTlsBelow12"]["Condition"] == {"NumericLessThan": {"s3:TlsVersion": "1.2"}}

    log_group = resources["FunctionLogGroup"]["Properties"]
    assert log_group["RetentionInDays"] == {"Ref": "LogRetentionInDays"}


def test_trial_domain_settings_in_the_template() -> None:
    out = _transformed(
        {"CreateOpenSearchDomain": "true", "OpenSearchOperatorArn": f"arn:aws:iam::{ACCOUNT}:role/ops"}
    )
    domain = out["Resources"]["OpenSearchDomain"]["Properties"]
    assert domain["ClusterConfig"]["InstanceType"] == "t3.small.search"
    assert domain["ClusterConfig"]["InstanceCount"] == 1
    assert domain["EncryptionAtRestOptions"] == {"Enabled": True}
    assert domain["NodeToNodeEncryptionOptions"] == {"Enabled": True}
    assert domain["DomainEndpointOptions"] == {
        "EnforceHTTPS": True,
        "TLSSecurityPolicy": "Policy-Min-TLS-1-2-2019-07",
    }
    assert domain["AdvancedSecurityOptions"] == {"Enabled": False}
    grants = domain["AccessPolicies"]["Statement"]
    function_grant = grants[0]
    assert function_grant["Principal"] == {"AWS": {"Fn::GetAtt": ["FunctionRole", "Arn"]}}
    assert sorted(function_grant["Action"]) == [
        "es:ESHttpGet",
        "es:ESHttpHead",
        "es:ESHttpPost",
        "es:ESHttpPut",
    ]
    domain_arn = "arn:${AWS::Partition}:es:${AWS::Region}:${AWS::AccountId}:domain/${OpenSearchDomainName}"
    assert function_grant["Resource"] == [
        {"Fn::Sub": domain_arn + path}
        for path in (
            "/${IndexPrefix}*",
            "/_alias/${IndexPrefix}*",
            "/_index_template/${IndexPrefix}*",
            "/_aliases",
        )
    ]
    assert grants[1]["Fn::If"][0] == "DomainHasOperator"  # the operator grant exists only when asked for
    # The function gets the domain URL and the role the same domain ARN the domain policy names.
    environment = out["Resources"]["ProjectorFunction"]["Properties"]["Environment"]["Variables"]
    assert environment["PROJECTOR_OPENSEARCH_URL"]["Fn::If"][1] == {
        "Fn::Sub": "https://${OpenSearchDomain.DomainEndpoint}"
    }
    role_policies = {
        p["PolicyName"]: p["PolicyDocument"]  # noqa: RUF100
        for p in out["Resources"]["FunctionRole"]["Properties"]["Policies"]
    }
    es_resource = role_policies["write-search-documents"]["Statement"][0]["Resource"]
    assert es_resource["Fn::If"][1] == function_grant["Resource"]
    assert es_resource["Fn::If"][2] == [
        {"Fn::Sub": "${OpenSearchDomainArn}" + path}
        for path in (
            "/${IndexPrefix}*",
            "/_alias/${IndexPrefix}*",
            "/_index_template/${IndexPrefix}*",
            "/_aliases",
        )
    ]


def test_alarms_in_the_template() -> None:
    out = _transformed({"OpenSearchEndpoint": EXISTING_ENDPOINT, "OpenSearchDomainArn": EXISTING_DOMAIN_ARN})
    alarms = {
        logical_id: resource["Properties"]
        for logical_id, resource in out["Resources"].items()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
    }
    topic = {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}
    expected = {
        "IteratorAgeAlarm": (
            "AWS/Lambda",
            "IteratorAge",
            [{"Name": "FunctionName", "Value": {"Ref": "ProjectorFunction"}}],
        ),
        "FunctionErrorsAlarm": (
            "AWS/Lambda",
            "Errors",
            [{"Name": "FunctionName", "Value": {"Ref": "ProjectorFunction"}}],
        ),
        "SkippedBatchesAlarm": (
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["OnFailureQueue", "QueueName"]}}],
        ),
        "DeadLetteredAlarm": (
            "projector",
            "DeadLettered",
            [{"Name": "service", "Value": {"Ref": "AWS::StackName"}}],
        ),
    }
    assert set(alarms) == set(expected) | {"StreamNotDeliveredAlarm"}
    for logical_id, (namespace, metric, dimensions) in expected.items():
        alarm = alarms[logical_id]
        assert (alarm["Namespace"], alarm["MetricName"], alarm["Dimensions"]) == (
            namespace,
            metric,
            dimensions,
        )
        assert alarm["AlarmActions"] == topic and alarm["OKActions"] == topic
        assert alarm["TreatMissingData"] == "notBreaching"
    # The stall alarm: table writes with no invocation, 3 periods in a row (see the template's comment).
    stalled = alarms.pop("StreamNotDeliveredAlarm")
    metrics = {metric["Id"]: metric for metric in stalled["Metrics"]}
    assert metrics["writes"]["MetricStat"]["Metric"]["MetricName"] == "ConsumedWriteCapacityUnits"
    assert metrics["invocations"]["MetricStat"]["Metric"]["Dimensions"] == [
        {"Name": "FunctionName", "Value": {"Ref": "ProjectorFunction"}}
    ]
    assert metrics["stalled"]["Expression"] == "IF(writes > 0 AND FILL(invocations, 0) == 0, 1, 0)"
    assert [metric["Id"] for metric in stalled["Metrics"] if metric["ReturnData"]] == ["stalled"]
    assert (stalled["EvaluationPeriods"], stalled["DatapointsToAlarm"], stalled["Threshold"]) == (3, 3, 1)
    assert stalled["AlarmActions"] == topic and stalled["OKActions"] == topic
    assert alarms["IteratorAgeAlarm"]["Threshold"] == {"Ref": "IteratorAgeAlarmThresholdMs"}
    # The DeadLettered alarm's dimension is the service name the function's metrics carry.
    environment = out["Resources"]["ProjectorFunction"]["Properties"]["Environment"]["Variables"]
    assert environment["POWERTOOLS_SERVICE_NAME"] == {"Ref": "AWS::StackName"}
    assert environment["POWERTOOLS_METRICS_NAMESPACE"] == alarms["DeadLetteredAlarm"]["Namespace"]


# ---------------------------------------------------------------------------------------------- moto


class Deployment:
    """One stack of the template's moto variant, with everything it made, deleted afterwards."""

    def __init__(self, suffix: str) -> None:
        self.suffix = suffix
        self.stacks: list[str] = []
        self.buckets: list[str] = []
        self.tables: list[str] = []

    def artifact(self) -> str:
        """Upload a stub code zip (what `sam package` does with the real one) and answer its S3 URI."""
        s3 = client("s3")
        bucket = f"projector-artifacts-{self.suffix}"
        s3.create_bucket(Bucket=bucket)
        self.buckets.append(bucket)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("projector/__init__.py", "")
            archive.writestr("projector/handler.py", "def lambda_handler(event, context):\n    return {}\n")
        s3.put_object(Bucket=bucket, Key="projector-lambda.zip", Body=buffer.getvalue())
        return f"s3://{bucket}/projector-lambda.zip"

    def create(
        self, name: str, variant: dict[str, Any], parameters: dict[str, str]
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Create the stack in moto's CloudFormation and wait for it; its description and resources."""
        cloudformation = client("cloudformation")
        cloudformation.create_stack(
            StackName=name,
            TemplateBody=json.dumps(variant),
            Capabilities=["CAPABILITY_IAM"],
            Parameters=[{"ParameterKey": key, "ParameterValue": value} for key, value in parameters.items()],
        )
        self.stacks.append(name)

        def settled() -> dict[str, Any] | None:
            stack: dict[str, Any] = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
            return None if stack["StackStatus"].endswith("_IN_PROGRESS") else stack

        stack = wait_until(settled, 60, 0.2, f"stack {name} to settle")
        summaries = cloudformation.list_stack_resources(StackName=name)["StackResourceSummaries"]
        for summary in summaries:
            if summary["LogicalResourceId"] == "DeadLetterBucket":
                self.buckets.append(summary["PhysicalResourceId"])  # Retain: outlives the stack
        return stack, summaries

    def deploy(
        self, name: str, parameters: dict[str, str], live_conditions: dict[str, bool]
    ) -> dict[str, Any]:
        # the state machine and the events-table grant are off by default
        live_conditions = {"BackfillEnabled": False, "EventsSource": False, **live_conditions}
        template = load_template()
        template["Resources"]["ProjectorFunction"]["Properties"]["CodeUri"] = self.artifact()
        transformed, _ = sam_transform(template, parameters)
        supported = moto_resource_types()
        removed = {
            logical_id
            for logical_id, resource in transformed["Resources"].items()
            if resource["Type"] not in supported and live_conditions.get(resource.get("Condition", ""), True)
        }
        assert {transformed["Resources"][r]["Type"] for r in removed} == {
            "AWS::CloudWatch::Alarm",
            "AWS::S3::BucketPolicy",
            "AWS::Logs::MetricFilter",
            "AWS::CloudFormation::WaitConditionHandle",
        } | ({"AWS::OpenSearchService::Domain"} if live_conditions.get("CreateDomain") else set())
        variant = without_resources(transformed, removed)
        assert set(transformed["Outputs"]) - set(variant["Outputs"]) == {
            "AlarmNames",
            "StreamNotDeliveredAlarmName",
        }

        stack, summaries = self.create(name, variant, parameters)
        # moto lists a resource whose condition is false as a blank entry; keep the real ones.
        physical = {
            s["LogicalResourceId"]: s["PhysicalResourceId"] for s in summaries if s["LogicalResourceId"]
        }
        if "SourceTable" in physical:
            self.tables.append(physical["SourceTable"])  # Retain: outlives the stack
        assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
        live = {
            logical_id
            for logical_id, resource in variant["Resources"].items()
            if live_conditions.get(resource.get("Condition", ""), True)
        }
        assert set(physical) == live  # everything deployable was deployed, nothing else
        assert len(summaries) - len(physical) == len(variant["Resources"]) - len(live)
        assert all(s["ResourceStatus"] == "CREATE_COMPLETE" for s in summaries)
        return {
            "physical": physical,
            "outputs": {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])},
            "removed": removed,
        }

    def cleanup(self) -> None:
        cloudformation = client("cloudformation")
        for name in self.stacks:
            with contextlib.suppress(ClientError):
                cloudformation.delete_stack(StackName=name)
        dynamodb, s3 = client("dynamodb"), client("s3")
        for table in self.tables:
            with contextlib.suppress(ClientError):
                dynamodb.delete_table(TableName=table)
        for bucket in self.buckets:
            try:
                for version in s3.list_object_versions(Bucket=bucket).get("Versions", []):
                    s3.delete_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])
                s3.delete_bucket(Bucket=bucket)
            except ClientError:
                pass


@pytest.fixture
def deployment(moto_server: str) -> Any:
    made = Deployment(uuid.uuid4().hex[:8])
    yield made
    made.cleanup()


def _role_grants(iam: Any, role_name: str) -> tuple[set[tuple[str, str]], list[dict[str, Any]]]:
    """(action, resource) pairs of the role's inline policies, and the raw statements."""
    pairs: set[tuple[str, str]] = set()
    raw: list[dict[str, Any]] = []
    for policy_name in iam.list_role_policies(RoleName=role_name)["PolicyNames"]:
        document = iam.get_role_policy(RoleName=role_name, PolicyName=policy_name)["PolicyDocument"]
        for statement in statements(document):
            raw.append(statement)
            assert statement["Effect"] == "Allow"
            assert "NotAction" not in statement and "NotResource" not in statement
            for action in as_list(statement["Action"]):
                for resource in as_list(statement["Resource"]):
                    pairs.add((action, resource))
    return pairs, raw


def _assert_common(
    stack: dict[str, Any], parameters: dict[str, str], stream_arn: str, source_table: str
) -> None:
    physical, outputs = stack["physical"], stack["outputs"]
    lam, dynamodb, sqs, s3, iam, logs = (
        client(name) for name in ("lambda", "dynamodb", "sqs", "s3", "iam", "logs")
    )
    function_name = physical["ProjectorFunction"]
    aggregates_table = physical["AggregatesTable"]
    bucket = physical["DeadLetterBucket"]
    queue_url = physical["OnFailureQueue"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    role_name = physical["FunctionRole"]
    log_group = physical["FunctionLogGroup"]

    # --- the event source mapping
    mappings = lam.list_event_source_mappings(FunctionName=function_name)["EventSourceMappings"]
    assert len(mappings) == 1
    mapping = mappings[0]
    assert mapping["EventSourceArn"] == stream_arn
    assert mapping["FunctionArn"].endswith(f":function:{function_name}")
    assert mapping["State"] == "Enabled"
    assert mapping["StartingPosition"] == parameters.get("StartingPosition", "TRIM_HORIZON")
    assert mapping["BatchSize"] == int(parameters.get("BatchSize", 100))
    assert mapping["MaximumBatchingWindowInSeconds"] == int(
        parameters.get("MaximumBatchingWindowInSeconds", 1)
    )
    assert mapping["ParallelizationFactor"] == int(parameters.get("ParallelizationFactor", 1))
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BisectBatchOnFunctionError"] is True
    assert mapping["MaximumRetryAttempts"] == int(parameters.get("MaximumRetryAttempts", 10000)) >= 0
    assert mapping["MaximumRecordAgeInSeconds"] == int(parameters.get("MaximumRecordAgeInSeconds", 43200)) > 0
    assert mapping["DestinationConfig"] == {"OnFailure": {"Destination": queue_arn}}
    assert mapping["MetricsConfig"] == {"Metrics": ["EventCount"]}
    assert outputs["EventSourceMappingId"] == mapping["UUID"]

    # --- the dashboard: every panel the issue asks for, on this stack's function, mapping and queue
    dashboard_name = outputs["DashboardName"]
    body = json.loads(client("cloudwatch").get_dashboard(DashboardName=dashboard_name)["DashboardBody"])
    panels = {widget["properties"]["title"]: widget for widget in body["widgets"]}
    assert len(panels) == 7
    shown = json.dumps(body)
    for metric in (
        "IteratorAge",
        "BatchDuration",
        "RecordsApplied",
        "RecordsStale",
        "DeadLettered",
        "Retries",
        "OpenSearch429",
        "OpenSearch5xx",
        "ApproximateNumberOfMessagesVisible",
        "PolledEventCount",
    ):
        assert f'"{metric}"' in shown, metric
    assert f'"FunctionName", "{function_name}"' in shown
    assert f'"EventSourceMappingUUID", "{mapping["UUID"]}"' in shown
    assert f'"QueueName", "{queue_url.rsplit("/", 1)[1]}"' in shown

    # --- the function
    config = lam.get_function_configuration(FunctionName=function_name)
    assert config["Runtime"] == "python3.12"
    assert config["Handler"] == "projector.handler.lambda_handler"
    assert config["Timeout"] == 60 and config["MemorySize"] == 512
    assert config["Role"].endswith(f":role/{role_name}")
    domain_url = parameters.get("OpenSearchEndpoint")
    assert config["Environment"]["Variables"] == {
        "PROJECTOR_OPENSEARCH_URL": domain_url,
        "PROJECTOR_OPENSEARCH_AUTH": "sigv4",
        "PROJECTOR_DYNAMODB_ENDPOINT": "",
        "PROJECTOR_SOURCE_TABLE": source_table,
        "PROJECTOR_AGGREGATES_TABLE": aggregates_table,
        "PROJECTOR_INDEX_PREFIX": parameters.get("IndexPrefix", "projector-"),
        "PROJECTOR_DEAD_LETTERS": f"s3://{bucket}/dead-letters",
        "PROJECTOR_STATE_DIR": "/tmp/projector",
        "POWERTOOLS_SERVICE_NAME": outputs["FunctionName"].removesuffix("-projector"),
        "POWERTOOLS_METRICS_NAMESPACE": "projector",
        "POWERTOOLS_LOG_LEVEL": parameters.get("LogLevel", "INFO"),
        "POWERTOOLS_TRACE_DISABLED": "false" if parameters.get("Tracing", "Active") == "Active" else "true",
    }
    subnets = [s for s in parameters.get("VpcSubnetIds", "").split(",") if s]
    if subnets:
        assert sorted(config["VpcConfig"]["SubnetIds"]) == sorted(subnets)
        assert config["VpcConfig"]["SecurityGroupIds"] == parameters["VpcSecurityGroupIds"].split(",")
    else:
        assert not config.get("VpcConfig", {}).get("SubnetIds")
    assert outputs["FunctionName"] == function_name

    # --- the aggregates table
    table = dynamodb.describe_table(TableName=aggregates_table)["Table"]
    assert aggregates_table == parameters["AggregatesTableName"]
    assert table["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert sorted((a["AttributeName"], a["AttributeType"]) for a in table["AttributeDefinitions"]) == [
        ("pk", "S"),
        ("sk", "S"),
    ]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"

    # --- the on-failure queue
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    assert attributes["SqsManagedSseEnabled"] == "true"
    assert attributes["MessageRetentionPeriod"] == "1209600"
    assert outputs["OnFailureQueueArn"] == queue_arn and outputs["OnFailureQueueUrl"] == queue_url

    # --- the dead-letter bucket (moto applies only the encryption from CloudFormation; see the docstring)
    encryption = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    key = parameters.get("DeadLetterKmsKeyArn")
    if key:
        assert encryption["ApplyServerSideEncryptionByDefault"] == {
            "SSEAlgorithm": "aws:kms",
            "KMSMasterKeyID": key,
        }
    else:
        assert encryption["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert outputs["DeadLettersUrl"] == f"s3://{bucket}/dead-letters"

    # --- the log group
    groups = logs.describe_log_groups(logGroupNamePrefix=log_group)["logGroups"]
    assert [(g["logGroupName"], g["retentionInDays"]) for g in groups] == [
        (log_group, int(parameters.get("LogRetentionInDays", 30)))
    ]
    assert log_group == f"/aws/lambda/{function_name}"

    # --- the role: trust, and every grant names its resource
    trust = iam.get_role(RoleName=role_name)["Role"]["AssumeRolePolicyDocument"]
    trust_statements = statements(trust) if isinstance(trust, str) else trust["Statement"]
    assert [s["Principal"] for s in trust_statements] == [{"Service": "lambda.amazonaws.com"}]
    assert iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"] == []
    pairs, raw = _role_grants(iam, role_name)
    domain_arn = parameters.get("OpenSearchDomainArn")
    prefix = parameters.get("IndexPrefix", "projector-")
    aggregates_arn = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{aggregates_table}"
    expected = {
        *{
            (action, stream_arn)
            for action in ("dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator")
        },
        ("dynamodb:ListStreams", f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{source_table}/stream/*"),
        ("dynamodb:DescribeTable", f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{source_table}"),
        # OpenSearch: only paths under the stack's prefix (and the body-scoped _aliases).
        *{
            (f"es:{action}", f"{domain_arn}/{path}")
            for action in ("ESHttpGet", "ESHttpHead", "ESHttpPost", "ESHttpPut")
            for path in (f"{prefix}*", f"_alias/{prefix}*", f"_index_template/{prefix}*", "_aliases")
        },
        *{
            (f"dynamodb:{action}", aggregates_arn)
            for action in ("GetItem", "BatchGetItem", "PutItem", "UpdateItem")
        },
        ("s3:PutObject", f"arn:aws:s3:::{bucket}/dead-letters/*"),  # no GetObject: the function only writes
        ("sqs:SendMessage", queue_arn),
        ("logs:CreateLogStream", f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{log_group}:*"),
        ("logs:PutLogEvents", f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{log_group}:*"),
    }
    # X-Ray and the VPC's network interfaces have no resource-level permissions: "*", only when asked.
    unscoped = set()
    if parameters.get("Tracing", "Active") == "Active":
        unscoped |= {("xray:PutTraceSegments", "*"), ("xray:PutTelemetryRecords", "*")}
    if subnets:
        unscoped |= {
            (f"ec2:{action}", "*")
            for action in (
                "CreateNetworkInterface",
                "DescribeNetworkInterfaces",
                "DeleteNetworkInterface",
                "AssignPrivateIpAddresses",
                "UnassignPrivateIpAddresses",
            )
        }
    if key:
        expected.add(("kms:GenerateDataKey", key))
    assert pairs == expected | unscoped
    for action, resource in pairs - unscoped:
        assert resource != "*" and not resource.endswith(":*:*"), (action, resource)
        assert "*" not in action, action
    assert not any(statement.get("Condition") for statement in raw)
    assert all(action.split(":")[0] != "cloudwatch" for action, _ in pairs)  # metrics go through EMF logs


def test_deploys_into_moto_with_a_new_source_table(deployment: Deployment) -> None:
    suffix = deployment.suffix
    parameters = {
        "SourceTableName": f"orders-{suffix}",
        "AggregatesTableName": f"aggregates-{suffix}",
        "OpenSearchEndpoint": EXISTING_ENDPOINT,
        "OpenSearchDomainArn": EXISTING_DOMAIN_ARN,
    }
    stack = deployment.deploy(
        f"projector-{suffix}",
        parameters,
        {
            "CreateSourceTable": True,
            "CreateDomain": False,
            "TracingActive": True,
            "InVpc": False,
            "HasDeadLetterKey": False,
        },
    )
    physical, outputs = stack["physical"], stack["outputs"]
    dynamodb = client("dynamodb")
    source = dynamodb.describe_table(TableName=f"orders-{suffix}")["Table"]
    assert physical["SourceTable"] == f"orders-{suffix}"
    assert source["KeySchema"] == [{"AttributeName": "order_id", "KeyType": "HASH"}]
    assert source["AttributeDefinitions"] == [{"AttributeName": "order_id", "AttributeType": "S"}]
    assert source["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert source["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert outputs["SourceStreamArn"] == source["LatestStreamArn"]
    assert outputs["SourceTableName"] == f"orders-{suffix}"
    assert outputs["OpenSearchUrl"] == EXISTING_ENDPOINT
    assert outputs["OpenSearchDomainArn"] == EXISTING_DOMAIN_ARN
    assert client("lambda").get_function_configuration(FunctionName=physical["ProjectorFunction"])[
        "Architectures"
    ] == ["x86_64"]
    # No reserved concurrency unless asked for.
    concurrency = client("lambda").get_function_concurrency(FunctionName=physical["ProjectorFunction"])
    assert "ReservedConcurrentExecutions" not in concurrency
    _assert_common(stack, parameters, source["LatestStreamArn"], f"orders-{suffix}")


def test_deploys_into_moto_on_an_existing_stream_with_every_knob_set(deployment: Deployment) -> None:
    suffix = deployment.suffix
    dynamodb = client("dynamodb")
    existing = f"shop-orders-{suffix}"
    dynamodb.create_table(
        TableName=existing,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "order_id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "order_id", "KeyType": "HASH"}],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    deployment.tables.append(existing)
    stream_arn = dynamodb.describe_table(TableName=existing)["Table"]["LatestStreamArn"]
    ec2 = client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.42.{n}.0/24")["Subnet"]["SubnetId"] for n in (1, 2)
    ]
    group = ec2.create_security_group(GroupName=f"projector-{suffix}", Description="projector", VpcId=vpc)[
        "GroupId"
    ]
    parameters = {
        "SourceStreamArn": stream_arn,
        "AggregatesTableName": f"aggregates-{suffix}",
        "OpenSearchEndpoint": EXISTING_ENDPOINT,
        "OpenSearchDomainArn": EXISTING_DOMAIN_ARN,
        "IndexPrefix": f"t{suffix}-",
        "BatchSize": "500",
        "MaximumBatchingWindowInSeconds": "5",
        "ParallelizationFactor": "4",
        "StartingPosition": "LATEST",
        "MaximumRetryAttempts": "50",
        "MaximumRecordAgeInSeconds": "3600",
        "Architecture": "arm64",
        "ReservedConcurrency": "7",
        "LogRetentionInDays": "14",
        "LogLevel": "DEBUG",
        "Tracing": "PassThrough",
        "DeadLetterKmsKeyArn": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
        "VpcSubnetIds": ",".join(subnets),
        "VpcSecurityGroupIds": group,
        "AlarmTopicArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:projector-alarms",
    }
    stack = deployment.deploy(
        f"projector-existing-{suffix}",
        parameters,
        {
            "CreateSourceTable": False,
            "CreateDomain": False,
            "TracingActive": False,
            "InVpc": True,
            "HasDeadLetterKey": True,
        },
    )
    physical, outputs = stack["physical"], stack["outputs"]
    assert "SourceTable" not in physical  # the existing table is used, not created
    assert outputs["SourceTableName"] == existing and outputs["SourceStreamArn"] == stream_arn
    function_name = physical["ProjectorFunction"]
    concurrency = client("lambda").get_function_concurrency(FunctionName=function_name)
    assert concurrency["ReservedConcurrentExecutions"] == 7
    _assert_common(stack, parameters, stream_arn, existing)


# ---------------------------------------------------------------------------------------------- examples


def _check_parameter(parameters: dict[str, Any], key: str, value: str) -> None:
    assert key in parameters, f"{key} is not a template parameter"
    spec = parameters[key]
    if "AllowedValues" in spec:
        assert value in [str(v) for v in spec["AllowedValues"]], (key, value)
    if "AllowedPattern" in spec:
        assert re.fullmatch(spec["AllowedPattern"], value), (key, value)
    if spec["Type"] == "Number":
        number = float(value)
        assert number >= spec.get("MinValue", number) and number <= spec.get("MaxValue", number), (key, value)


def test_parameter_examples_fit_the_template() -> None:
    import tomllib

    parameters = load_template()["Parameters"]
    production = json.loads((REPO / "infra" / "parameters.example.json").read_text(encoding="utf-8"))
    for entry in production:
        _check_parameter(parameters, entry["ParameterKey"], entry["ParameterValue"])
    values = {entry["ParameterKey"]: entry["ParameterValue"] for entry in production}
    # every parameter but those of the example table and the trial domain
    trial_only = {"SourceTableName", "OpenSearchDomainName", "OpenSearchOperatorArn"}
    assert set(values) == set(parameters) - trial_only
    assert (
        values["CreateOpenSearchDomain"] == "false"
        and values["OpenSearchEndpoint"]
        and values["SourceStreamArn"]
    )

    trial = tomllib.loads((REPO / "infra" / "samconfig.example.toml").read_text(encoding="utf-8"))
    deploy = trial["default"]["deploy"]["parameters"]
    assert deploy["capabilities"] == "CAPABILITY_IAM"
    for override in deploy["parameter_overrides"]:
        key, _, value = override.partition("=")
        _check_parameter(parameters, key, value)
