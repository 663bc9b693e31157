"""The backfill state machine of infra/template.yaml: lint, a walk of its definition, its payloads run
against the handler on the real servers, SAM transform and deployment into moto's CloudFormation.

moto's CloudFormation reads only ``DefinitionString`` (not ``Definition`` + ``DefinitionSubstitutions``),
so the deployed variant carries the definition as a string with the substitutions applied, which is
what CloudFormation itself hands to Step Functions.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from devservers.workload import seed_orders
from projector.runtime import Runtime
from tests.integration.test_backfill import ready_runtime, verify
from tests.integration.test_export_load import assert_documents_match_truth
from tests.integration.test_template import (
    EXISTING_DOMAIN_ARN,
    EXISTING_ENDPOINT,
    TEMPLATE,
    Deployment,
    client,
    load_template,
    moto_resource_types,
    sam_transform,
    statements,
    without_resources,
)

pytestmark = pytest.mark.integration

BACKFILL_RESOURCES = {"BackfillFunctionPolicy", "BackfillStateMachineRole", "BackfillStateMachine"}
LAMBDA_ERRORS = "Lambda.TooManyRequestsException"


def _machine() -> dict[str, Any]:
    return load_template()["Resources"]["BackfillStateMachine"]["Properties"]


def _edges(state: dict[str, Any]) -> list[str]:
    found = [state["Next"]] if "Next" in state else []
    found += [choice["Next"] for choice in state.get("Choices", [])]
    found += [state["Default"]] if "Default" in state else []
    found += [catch["Next"] for catch in state.get("Catch", [])]
    return found


def _walk(machine: dict[str, Any], where: str = "top") -> list[dict[str, Any]]:
    """Check every state is reachable and every edge lands on a state; answers the Task states."""
    states = machine["States"]
    seen, todo = set(), [machine["StartAt"]]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        assert name in states, f"{where}: {name} is not a state"
        seen.add(name)
        todo += _edges(states[name])
    assert seen == set(states), f"{where}: unreachable {set(states) - seen}"
    assert any(s.get("End") or s["Type"] in ("Succeed", "Fail") for s in states.values())
    tasks = [s for s in states.values() if s["Type"] == "Task"]
    for state in states.values():
        if state["Type"] == "Map":
            tasks += _walk(state["ItemProcessor"], f"{where}/map")
    return tasks


def test_the_template_lints_and_the_lint_checks_the_definition(tmp_path: Path) -> None:
    from cfnlint.api import lint_file

    assert lint_file(TEMPLATE) == []
    broken = TEMPLATE.read_text(encoding="utf-8").replace(
        "ToleratedFailurePercentage: 0", 'ToleratedFailurePercentage: "none"'
    )
    path = tmp_path / "template.yaml"
    path.write_text(broken, encoding="utf-8")
    assert {match.rule.id for match in lint_file(path)} == {"E3601"}  # the definition is validated


def test_the_definition_walks_cleanly() -> None:
    properties = _machine()
    machine = properties["Definition"]
    tasks = _walk(machine)
    assert len(tasks) == 4  # Begin, ApplyItem, Finish, Verify
    for task in tasks:
        assert task["Resource"] == "arn:aws:states:::lambda:invoke"
        assert task["Parameters"]["FunctionName"] == "${FunctionArn}"
        assert task["Catch"] and all(c["ErrorEquals"] for c in task["Catch"])
        throttles = [r for r in task["Retry"] if LAMBDA_ERRORS in r["ErrorEquals"]]
        assert throttles and throttles[0]["BackoffRate"] > 1 and throttles[0]["MaxAttempts"] >= 6
    states = machine["States"]
    begin, apply_items = states["Begin"], states["ApplyItems"]
    assert machine["StartAt"] == "Begin" and begin["Next"] == "ApplyItems"
    assert apply_items["Next"] == "Finish" and states["Finish"]["Next"] == "Verify"
    # the Map runs over the planned items, at the planned concurrency, tolerating no failure
    assert begin["ResultPath"] == "$.plan"
    assert begin["ResultSelector"]["bucket.$"] == "$.Payload.bucket"
    assert begin["ResultSelector"]["key.$"] == "$.Payload.key"
    assert begin["ResultSelector"]["concurrency.$"] == "$.Payload.concurrency"
    reader = apply_items["ItemReader"]  # the plan Begin wrote to S3 (no 256 KiB state limit)
    assert reader["Resource"] == "arn:aws:states:::s3:getObject"
    assert reader["ReaderConfig"]["InputType"] == "JSON"
    assert reader["Parameters"] == {"Bucket.$": "$.plan.bucket", "Key.$": "$.plan.key"}
    assert begin["Parameters"]["Payload"]["backfill"]["plans_url"] == "s3://${PlanBucket}/backfill-plans"
    assert apply_items["MaxConcurrencyPath"] == "$.plan.concurrency"
    assert apply_items["ToleratedFailurePercentage"] == 0
    assert apply_items["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    assert apply_items["ItemSelector"]["backfill"]["item.$"] == "$$.Map.Item.Value"
    payload = begin["Parameters"]["Payload"]["backfill"]
    assert payload["default_concurrency"] == "${MaxConcurrency}"
    assert payload["default_rate"] == "${ItemsPerSecond}"
    # an unfinished item loops back to ApplyItem with the item its last invocation answered
    inner = apply_items["ItemProcessor"]["States"]
    assert inner["ItemDone"]["Default"] == "ApplyItem"
    assert inner["ApplyItem"]["ResultSelector"]["backfill"]["item.$"] == "$.Payload.item"
    # every substitution is used, and nothing else is left to substitute
    text = json.dumps(machine)
    used = set(re.findall(r"\$\{(\w+)\}", text))
    assert used == set(properties["DefinitionSubstitutions"])
    template = load_template()
    for name in BACKFILL_RESOURCES:
        assert template["Resources"][name]["Condition"] == "BackfillEnabled"
    assert template["Parameters"]["BackfillStateMachineEnabled"]["Default"] == "false"


def _path(data: Any, path: str, item: Any = None) -> Any:
    if path == "$$.Map.Item.Value":
        return item
    value = data
    for part in path.removeprefix("$").strip(".").split(".") if path != "$" else []:
        value = value[part]
    return value


PLAN_BUCKET = f"plans-{uuid.uuid4().hex[:10]}"


def _fill(template: Any, data: Any, item: Any = None) -> Any:
    """Step Functions' Parameters / ResultSelector / ItemSelector, for the paths the definition uses."""
    if isinstance(template, dict):
        out = {}
        for key, value in template.items():
            if key.endswith(".$"):
                out[key[:-2]] = _path(data, value, item)
            else:
                out[key] = _fill(value, data, item)
        return out
    if isinstance(template, str):
        for name, value in (("MaxConcurrency", "3"), ("ItemsPerSecond", "0"), ("PlanBucket", PLAN_BUCKET)):
            template = template.replace("${" + name + "}", value)
        return template
    return template


def _task(state: dict[str, Any], data: Any) -> Any:
    from projector.handler import lambda_handler

    payload = _fill(state["Parameters"], data)
    payload = payload.get("Payload", payload)
    return _fill(state["ResultSelector"], {"Payload": lambda_handler(payload, None)})


def test_its_payloads_run_a_backfill_through_the_handler(
    settings_env: Any, opensearch: Any, dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The definition's payloads, as Step Functions would build them, against projector.handler."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:5000")
    s3 = client("s3")
    s3.create_bucket(Bucket=PLAN_BUCKET)
    runtime: Runtime = ready_runtime()
    seed_orders(dynamodb, runtime.settings.source_table, 30)
    states = _machine()["Definition"]["States"]
    data: dict[str, Any] = {  # the execution input; one projection keeps the test short
        "total_segments": 4,
        "concurrency": 8,
        "page_size": 10,
        "projections": ["orders"],
    }
    data["plan"] = _task(states["Begin"], data)
    plan = data["plan"]
    assert plan["count"] == 4 and plan["concurrency"] == 3  # capped by BackfillMaxConcurrency
    assert plan["rebuild"] is False and plan["verify"] is False
    map_state = states["ApplyItems"]
    inner = map_state["ItemProcessor"]["States"]
    applied = 0
    reader = _fill(map_state["ItemReader"]["Parameters"], data)
    planned = json.loads(s3.get_object(Bucket=reader["Bucket"], Key=reader["Key"])["Body"].read())
    s3.delete_object(Bucket=reader["Bucket"], Key=reader["Key"])
    s3.delete_bucket(Bucket=PLAN_BUCKET)
    for item in planned:
        child = _fill(map_state["ItemSelector"], data, item)
        while True:
            child = _task(inner["ApplyItem"], child)
            if child["done"]:
                applied += child["items"]
                break
    assert applied == 30
    data["finish"] = _task(states["Finish"], data)
    assert data["finish"]["swapped"] == {"swapped": False}
    data["verify"] = _task(states["Verify"], data)
    assert set(data["verify"]["summary"]["layout"]) == {"orders"}
    assert verify(runtime, projections=("orders",)).drift == 0
    assert_documents_match_truth(runtime, dynamodb, opensearch)


def _deploy(deployment: Deployment, parameters: dict[str, str]) -> dict[str, str]:
    template = load_template()
    template["Resources"]["ProjectorFunction"]["Properties"]["CodeUri"] = deployment.artifact()
    transformed, _ = sam_transform(template, parameters)
    assert set(transformed["Resources"]) >= BACKFILL_RESOURCES
    supported = moto_resource_types()
    variant = without_resources(
        transformed, {k for k, v in transformed["Resources"].items() if v["Type"] not in supported}
    )
    variant["Outputs"] = {
        key: value
        for key, value in variant["Outputs"].items()
        if key in {"BackfillStateMachineArn", "FunctionArn"}
    }
    machine = variant["Resources"]["BackfillStateMachine"]["Properties"]
    text = json.dumps(machine.pop("Definition"))
    parts: list[Any] = []
    for piece in re.split(r"(\$\{\w+\})", text):
        name = piece[2:-1] if piece.startswith("${") else None
        parts.append(machine["DefinitionSubstitutions"][name] if name else piece)
    machine["DefinitionString"] = {"Fn::Join": ["", [p if not isinstance(p, int) else str(p) for p in parts]]}
    del machine["DefinitionSubstitutions"]
    deployment.tables += [parameters["SourceTableName"]]
    stack, summaries = deployment.create(f"projector-backfill-{deployment.suffix}", variant, parameters)
    physical = {s["LogicalResourceId"]: s["PhysicalResourceId"] for s in summaries if s["LogicalResourceId"]}
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    return {**physical, **{o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}}


@pytest.fixture
def deployment(moto_server: str) -> Any:
    made = Deployment(uuid.uuid4().hex[:8])
    yield made
    made.cleanup()


def test_deploys_into_moto_with_the_state_machine_on(deployment: Deployment) -> None:
    suffix = deployment.suffix
    parameters = {
        "SourceTableName": f"orders-{suffix}",
        "AggregatesTableName": f"aggregates-{suffix}",
        "OpenSearchEndpoint": EXISTING_ENDPOINT,
        "OpenSearchDomainArn": EXISTING_DOMAIN_ARN,
        "BackfillStateMachineEnabled": "true",
        "BackfillMaxConcurrency": "25",
        "BackfillExportBucket": f"exports-{suffix}",
    }
    found = _deploy(deployment, parameters)
    assert set(found) >= BACKFILL_RESOURCES
    machine = client("stepfunctions").describe_state_machine(stateMachineArn=found["BackfillStateMachineArn"])
    assert machine["name"] == f"projector-backfill-{suffix}-backfill"
    definition = json.loads(machine["definition"])
    begin = definition["States"]["Begin"]
    assert begin["Parameters"]["FunctionName"] == found["FunctionArn"]
    assert begin["Parameters"]["Payload"]["backfill"]["default_concurrency"] == "25"
    iam = client("iam")
    role = machine["roleArn"].rsplit("/", 1)[-1]
    assumed = iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
    assert statements(assumed)[0]["Principal"] == {"Service": "states.amazonaws.com"}
    grants = {
        (action, resource)
        for policy in iam.list_role_policies(RoleName=role)["PolicyNames"]
        for statement in statements(iam.get_role_policy(RoleName=role, PolicyName=policy)["PolicyDocument"])
        for action in (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        for resource in (
            statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        )
    }
    assert {action for action, _ in grants} == {
        "s3:GetObject",
        "lambda:InvokeFunction",
        "states:StartExecution",
        "states:DescribeExecution",
        "states:StopExecution",
    }
    assert all("*" not in action and resource != "*" for action, resource in grants)


def test_the_backfill_role_may_page_scrolls_and_nothing_else_outside_the_prefix() -> None:
    """Verify and the rebuild's tombstone carry-over run in the function under the state machine; their
    scroll pages go to /_search/scroll (no index in the path), the one OpenSearch grant outside the
    prefix that the backfill adds: POST and DELETE there, nothing else."""
    policy = load_template()["Resources"]["BackfillFunctionPolicy"]["Properties"]["PolicyDocument"]
    opensearch = [
        statement
        for statement in policy["Statement"]
        if isinstance(statement, dict) and any(str(a).startswith("es:") for a in statement.get("Action", []))
    ]
    assert [statement["Sid"] for statement in opensearch] == ["ScrollPagesOfOwnIndexes"]
    assert sorted(opensearch[0]["Action"]) == ["es:ESHttpDelete", "es:ESHttpPost"]
    assert opensearch[0]["Resource"]["Fn::Sub"][0].endswith(":domain/${Domain}/_search/scroll")
