"""The operator API in the stack (infra/constructs/operator.py): IAM-signed routes to the operator
function, 405 elsewhere, a policy for operators only, and the function's least privilege."""

from __future__ import annotations

from functions import registry
from infra.constructs.operator import ROUTES
from tests.infrastructure.helpers import as_list, function_named, policy_statements_of_role, resources
from tests.infrastructure.test_resources import _path, assert_405_methods

OPERATOR_ROUTES = {(method, "/v1/operator/" + path) for path, method in ROUTES}


def _methods(dev):
    return {
        (m["Properties"]["HttpMethod"], _path(dev, m["Properties"]["ResourceId"])): m["Properties"]
        for m in resources(dev, "AWS::ApiGateway::Method").values()
    }


def test_operator_routes_are_iam_signed_and_proxied_to_the_operator_function(dev):
    methods = _methods(dev)
    operator_id, _ = function_named(dev, registry.OPERATOR.name)
    # Then exactly the six routes exist under /v1/operator, each SigV4-signed and proxied to the operator function
    assert {r for r in methods if r[1].startswith("/v1/operator") and r[0] != "ANY"} == OPERATOR_ROUTES
    assert ("GET", "/v1/operator/mismatches") in OPERATOR_ROUTES and len(OPERATOR_ROUTES) == 6
    for route in OPERATOR_ROUTES:
        assert methods[route]["AuthorizationType"] == "AWS_IAM"
        assert methods[route]["Integration"]["Type"] == "AWS_PROXY"
        assert operator_id in str(methods[route]["Integration"]["Uri"])


def test_other_methods_of_the_operator_routes_are_answered_405_with_allow(dev):
    anys = [p for (method, path), p in _methods(dev).items() if method == "ANY" and path.startswith("/v1/operator/")]
    assert_405_methods(dev, anys, {path: method for method, path in OPERATOR_ROUTES})


def _policy(dev, name_part):
    (policy,) = [
        p["Properties"]
        for p in resources(dev, "AWS::IAM::ManagedPolicy").values()
        if name_part in str(p["Properties"].get("ManagedPolicyName"))
    ]
    return policy["PolicyDocument"]["Statement"]


def _route_of(arn):
    """The '/METHOD/path' tail of an execute-api ARN built by arn_for_execute_api (an Fn::Join)."""
    return "".join(part for part in arn["Fn::Join"][1] if isinstance(part, str)).split("/dev", 1)[-1]


def test_only_the_operator_policy_reaches_the_operator_routes(dev):
    # Given the operator policy and the merchant policy
    (statement,) = _policy(dev, "operator")
    routes = {_route_of(arn) for arn in as_list(statement["Resource"])}
    # Then operators may invoke exactly the operator routes (any id), and merchants none of them
    assert statement["Action"] == "execute-api:Invoke"
    assert routes == {f"/{method}/v1/operator/{path.replace('{id}', '*')}" for path, method in ROUTES}
    merchant = [r for s in _policy(dev, "checkout-api-merchant") for r in as_list(s["Resource"])]
    assert merchant and not any("operator" in _route_of(arn) for arn in merchant)
    assert "OperatorPolicyArn" in dev["Outputs"]


def test_the_operator_function_queries_the_mismatch_index_and_no_other(dev):
    # Given the operator function's role policy
    _, function = function_named(dev, registry.OPERATOR.name)
    role = function["Role"]["Fn::GetAtt"][0]
    statements = policy_statements_of_role(dev, role)
    parts = [
        part
        for s in statements
        for r in as_list(s["Resource"])
        if isinstance(r, dict) and "Fn::Join" in r
        for part in r["Fn::Join"][1]
        if isinstance(part, str)
    ]
    # Then the reconciliation index is granted by its name, nothing by index/*, and it writes no new item
    assert "/index/by_mismatch_day" in parts and not any(p.endswith("/index/*") for p in parts)
    dynamodb = {a for s in statements for a in as_list(s["Action"]) if a.startswith("dynamodb:")}
    assert not dynamodb & {"dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}
