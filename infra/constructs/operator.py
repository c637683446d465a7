"""The operator API: ``/v1/operator/...`` on the stage's API, served by ``functions/operator``.

* Routes (IAM-authenticated, SigV4, like every route of the API but the PSP's webhook):
  ``GET /v1/operator/attention``, ``GET /v1/operator/attention/{id}``,
  ``POST /v1/operator/attention/{id}/resolve``, ``GET /v1/operator/mismatches``,
  ``GET /v1/operator/mismatches/{id}``, ``POST /v1/operator/mismatches/{id}/resolve``; every other
  method answers 405 with ``Allow``. The function records the caller's IAM identity (API Gateway's
  ``requestContext.identity.userArn``) as who resolved.
* ``OperatorPolicy``: a managed policy allowing exactly those routes, to attach to operators' roles
  (the merchant policy does not reach them).
* Least privilege for the function: the payments table (Scan for the open flags, GetItem, the
  conditional UpdateItem), the reconciliation table (Query on the table and its ``by_mismatch_day``
  index, GetItem, the conditional UpdateItem) and the HTML reports under ``reports/`` (GetObject of
  the JSON report, PutObject of the HTML) of the settlement bucket.
"""

from __future__ import annotations

from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct

from functions import registry
from infra.constructs.checkout_api import answer_other_methods_405
from infra.constructs.function import PaymentsFunction
from infra.constructs.tables import PaymentTables
from infra.nag import acknowledge_wildcard_resource
from infra.stage import Stage
from payments.reconciliation.service import REPORTS

#: (path under /v1/operator, method) of every operator route
ROUTES = (
    ("attention", "GET"),
    ("attention/{id}", "GET"),
    ("attention/{id}/resolve", "POST"),
    ("mismatches", "GET"),
    ("mismatches/{id}", "GET"),
    ("mismatches/{id}/resolve", "POST"),
)


class OperatorApi(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: Stage,
        code: lambda_.Code,
        tables: PaymentTables,
        api: apigw.RestApi,
        settlement_bucket: s3.IBucket,
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = PaymentsFunction(
            self,
            "Operator",
            stage=stage,
            code=code,
            spec=registry.OPERATOR,
            tables=tables,
            settings={"settlement_bucket": settlement_bucket.bucket_name},
        )
        self.function.use_objects(
            settlement_bucket,
            ["GetObject", "PutObject"],
            [f"{REPORTS}*"],
            reason="A resolved mismatch's HTML report is written again from its JSON report; both are named "
            "after the settlement file, unknown in advance.",
        )
        integration = apigw.LambdaIntegration(self.function.function, proxy=True, allow_test_invoke=False)
        v1 = api.root.get_resource("v1") or api.root.add_resource("v1")
        root = v1.add_resource("operator")
        resources: dict[str, apigw.Resource] = {}
        for path, method in ROUTES:
            resource = root
            for part in path.split("/"):
                resource = resource.get_resource(part) or resource.add_resource(part)  # type: ignore[assignment]
            resource.add_method(method, integration)  # IAM: the API's default authorisation
            resources[path] = resource
        for path, method in ROUTES:
            answer_other_methods_405(resources[path], method)

        self.policy = iam.ManagedPolicy(
            self,
            "OperatorPolicy",
            managed_policy_name=stage.resource_name("operator"),
            description="Attach to an operator's role: list and resolve attention flags and settlement mismatches",
        )
        arns = [
            api.arn_for_execute_api(method, "/v1/operator/" + path.replace("{id}", "*"), stage.name)
            for path, method in ROUTES
        ]
        self.policy.add_statements(iam.PolicyStatement(actions=["execute-api:Invoke"], resources=arns))
        for arn in arns:
            if "*" in str(arn) or "{" in str(arn):
                acknowledge_wildcard_resource(
                    self.policy,
                    arn,
                    "The route's path parameter is an order, refund or mismatch id, unknown in advance.",
                )
