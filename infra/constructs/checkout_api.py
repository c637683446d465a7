"""Checkout API: the REST API in front of the payment function.

* Authentication: IAM (SigV4). A caller needs AWS credentials whose policy
  allows ``execute-api:Invoke`` on the route; ``MerchantPolicy`` is that policy
  for a merchant's checkout backend (create and read payments). Unsigned or
  wrongly signed requests are rejected by API Gateway before any code runs.
* Throttling: a stage-wide rate and burst limit from context.
* Request size: API Gateway's hard limit is 10 MB; the payment function rejects
  bodies over ``payments.kernel.config.MAX_BODY_BYTES`` (64 KiB) with a 413 problem.
* Validation happens in the function (pydantic), so every rejection is an
  RFC 9457 problem naming the offending field path, as the contract requires;
  API Gateway's own errors (auth, throttling, size) are shaped as problems too.
* Access logs: one JSON line per request in the API's access log group.
* OpenAPI: API Gateway exports the deployed description
  (``aws apigateway get-export --export-type oas30``); see docs/deploy.md.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from functions import registry
from infra.constructs.common import stage_log_group
from infra.constructs.function import PaymentsFunction
from infra.constructs.tables import PaymentTables
from infra.nag import acknowledge, acknowledge_wildcard_resource
from infra.stage import Stage

#: API Gateway's own error responses, answered as RFC 9457 problems (status None: varies by cause).
_GATEWAY_PROBLEMS: tuple[tuple[apigw.ResponseType, str | None], ...] = (
    (apigw.ResponseType.MISSING_AUTHENTICATION_TOKEN, "403"),
    (apigw.ResponseType.INVALID_SIGNATURE, "403"),
    (apigw.ResponseType.EXPIRED_TOKEN, "403"),
    (apigw.ResponseType.ACCESS_DENIED, "403"),
    (apigw.ResponseType.THROTTLED, "429"),
    (apigw.ResponseType.REQUEST_TOO_LARGE, "413"),
    (apigw.ResponseType.DEFAULT_4_XX, None),
    (apigw.ResponseType.DEFAULT_5_XX, None),
)


class CheckoutApi(Construct):
    """``functions/payment`` behind ``/v1``; the function also runs the workflow's FinalizePayment task."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: Stage,
        code: lambda_.Code,
        tables: PaymentTables,
        state_machine_arn: str,
        state_machine_executions_arn: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = PaymentsFunction(
            self,
            "Payment",
            stage=stage,
            code=code,
            spec=registry.PAYMENT,
            tables=tables,
            settings={
                # The ARN is built from the workflow's fixed name, not referenced: the state
                # machine invokes this function, so a reference would be a dependency cycle.
                "state_machine_arn": state_machine_arn,
                "wallet_shards": str(stage.wallet_shards),
                "ledger_total_shards": str(stage.ledger_total_shards),
                "payments_psp": stage.payments_psp,
                # the commission fixed on each order when a payment is accepted (payments.accounts.commission)
                "payments_commission_bps": str(stage.commission_bps),
                "payments_commission_overrides": stage.commission_overrides,
            },
        )
        fn = self.function
        fn.allow(["states:StartExecution"], [state_machine_arn])
        fn.allow(["states:DescribeExecution"], [state_machine_executions_arn])
        acknowledge_wildcard_resource(
            fn.role,
            state_machine_executions_arn,
            "Executions are named after checkout ids, unknown in advance; the wildcard covers only the "
            "executions of this stage's payment state machine.",
        )

        self.access_logs = stage_log_group(self, "AccessLogs", stage=stage)
        self.api = apigw.RestApi(
            self,
            "Api",
            rest_api_name=stage.resource_name("checkout-api"),
            description="Payments API (/v1): create and read payments, seller wallets, ledger trial balance",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            cloud_watch_role=True,  # the account-level role API Gateway needs to write execution logs
            cloud_watch_role_removal_policy=cdk.RemovalPolicy.RETAIN,
            deploy_options=apigw.StageOptions(
                stage_name=stage.name,
                throttling_rate_limit=stage.api_rate_limit,
                throttling_burst_limit=stage.api_burst_limit,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,  # bodies hold buyer data: never in execution logs
                metrics_enabled=True,
                tracing_enabled=True,
            ),
            default_method_options=apigw.MethodOptions(authorization_type=apigw.AuthorizationType.IAM),
            default_integration=apigw.LambdaIntegration(fn.invoke_target, proxy=True, allow_test_invoke=False),
        )
        v1 = self.api.root.add_resource("v1")
        payments = v1.add_resource("payments")
        payments.add_method("POST", request_parameters={"method.request.header.Idempotency-Key": True})
        payment = payments.add_resource("{checkout_id}")
        payment.add_method("GET")
        wallet = v1.add_resource("wallets").add_resource("{seller_account}")
        wallet.add_method("GET")
        trial_balance = v1.add_resource("ledger").add_resource("trial-balance")
        trial_balance.add_method("GET")
        for resource, allow in ((payments, "POST"), (payment, "GET"), (wallet, "GET"), (trial_balance, "GET")):
            answer_other_methods_405(resource, allow)
        for response_type, status in _GATEWAY_PROBLEMS:
            self._answer_as_problem(response_type, status)

        self.merchant_policy = iam.ManagedPolicy(
            self,
            "MerchantPolicy",
            managed_policy_name=stage.resource_name("checkout-api-merchant"),
            description="Attach to a merchant's checkout backend: create payments and read their status",
            statements=[
                iam.PolicyStatement(
                    actions=["execute-api:Invoke"],
                    resources=[
                        self.api.arn_for_execute_api("POST", "/v1/payments", stage.name),
                        self.api.arn_for_execute_api("GET", "/v1/payments/*", stage.name),
                    ],
                )
            ],
        )
        acknowledge_wildcard_resource(
            self.merchant_policy,
            self.api.arn_for_execute_api("GET", "/v1/payments/*", stage.name),
            "The route's path parameter is the checkout id, unknown in advance.",
        )
        self._acknowledge_findings()

    def _answer_as_problem(self, response_type: apigw.ResponseType, status: str | None) -> None:
        status_member = f', "status": {status}' if status else ""
        self.api.add_gateway_response(
            f"Problem{response_type.response_type}",
            type=response_type,
            status_code=status,
            response_headers={"Content-Type": "'application/problem+json'"},
            templates={
                "application/json": '{"type": "about:blank", "title": $context.error.messageString'
                f"{status_member}"
                ', "detail": $context.error.messageString}'
            },
        )

    def _acknowledge_findings(self) -> None:
        acknowledge(
            self.api,
            "AwsSolutions-APIG2",
            "Requests are validated by the payment function (pydantic) so that every rejection is an RFC 9457 "
            "problem listing the offending field paths, as the public contract requires; an API Gateway "
            "validator would answer in its own format and duplicate the model.",
        )
        acknowledge(
            self.api,
            "AwsSolutions-APIG3",
            "Every route requires SigV4 (IAM) authentication, so anonymous traffic never reaches the "
            "integration, and the stage is throttled; a WAF web ACL is a platform-level choice left to the "
            "account owner.",
        )
        acknowledge(
            self.api,
            "AwsSolutions-COG4",
            "The API uses IAM (SigV4) authorization, not a Cognito user pool: its callers are merchant "
            "backends with AWS credentials, not end users.",
        )
        acknowledge(
            self.api,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AmazonAPIGatewayPushToCloudWatchLogs]",
            "The account-level role API Gateway uses to write execution logs; AWS's managed policy is the "
            "documented one and allows only CloudWatch Logs writes.",
        )


def answer_other_methods_405(resource: apigw.Resource, allow: str) -> None:
    """Every other method of a route: 405 problem with ``Allow``, as the function answers locally.

    Without it API Gateway answers an unknown method on a known path with 403 ``Missing Authentication
    Token``. The ``ANY`` method (explicit methods take precedence over it) is a mock integration: no
    backend is reached, so it needs no authorization; a body of another media type than JSON gets API
    Gateway's 415 (a problem too, through DEFAULT_4XX).
    """
    headers = {
        "method.response.header.Allow": f"'{allow}'",
        "method.response.header.Content-Type": "'application/problem+json'",
    }
    problem = (
        '{"type": "urn:payments:problem:method-not-allowed", "title": "Method not allowed", "status": 405, '
        f'"detail": "This path answers {allow} only."}}'
    )
    method = resource.add_method(
        "ANY",
        apigw.MockIntegration(
            passthrough_behavior=apigw.PassthroughBehavior.NEVER,
            request_templates={"application/json": '{"statusCode": 405}'},
            integration_responses=[
                apigw.IntegrationResponse(
                    status_code="405", response_parameters=headers, response_templates={"application/json": problem}
                )
            ],
        ),
        authorization_type=apigw.AuthorizationType.NONE,
        method_responses=[apigw.MethodResponse(status_code="405", response_parameters=dict.fromkeys(headers, True))],
    )
    acknowledge(
        method,
        "AwsSolutions-APIG4",
        "A mock integration answering 405 (method not allowed) for the methods a route does not have: it reaches "
        "no backend and returns a constant problem, so there is nothing to authorize.",
    )
    acknowledge(
        method,
        "AwsSolutions-COG4",
        "A mock integration answering 405 for the methods a route does not have: no backend, no caller to identify.",
    )
