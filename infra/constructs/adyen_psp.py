"""Adyen as the stage's PSP: its two secrets, and the executor's settings.

Deployed only when the stage's ``psp`` is ``adyen`` (the simulated PSP's table and nightly
job are then not deployed at all). Two Secrets Manager secrets, each readable only by the
function that needs it:

* the **API key** (``X-API-Key`` of the web service user): read by the executor only,
  through ``ADYEN_API_KEY_SECRET_ARN``; the adapter (``payments.psp.adyen``) reads it with
  Powertools parameters and keeps it ``ADYEN_SECRET_MAX_AGE`` seconds per container;
* the **HMAC key** of the Standard webhook: for the notifications function (issue 18),
  granted with :meth:`AdyenPsp.grant_hmac_keys`; until then no function can read it. Its
  value is the hex key, or the JSON ``{"current": ..., "previous": ..., "previous_valid_until":
  ...}`` during a rotation (``payments.psp.hmac.keys_from_secret``).

A secret is imported when the stage names one (``adyenApiKeySecret``, ``adyenHmacKeySecret``:
a name or a complete ARN), otherwise created **empty** (no generated value: a random string
is neither a valid API key nor a hex HMAC key). An operator puts the values (docs/deploy.md,
"Connecting Adyen"); until then a charge cannot read its key, fails as "PSP unavailable"
and is retried, nothing is charged. Rotation is done in Adyen's Customer Area, where the keys
are issued, not by a rotation Lambda.
"""

from __future__ import annotations

from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.constructs.function import PaymentsFunction
from infra.nag import acknowledge, acknowledge_wildcard_resource
from infra.stage import AdyenStage, Stage
from payments.psp.adyen import AdyenSettings

ROTATION_REASON = (
    "Adyen issues the API key and the HMAC key in its Customer Area; Secrets Manager cannot rotate them. "
    "An operator rotates them there and puts the new value (the HMAC secret holds the current and previous "
    "keys during a rotation): docs/deploy.md, 'Rotating the keys'."
)


class AdyenPsp(Construct):
    """The API key and HMAC key secrets of a stage charging through Adyen."""

    def __init__(self, scope: Construct, construct_id: str, *, stage: Stage) -> None:
        super().__init__(scope, construct_id)
        if stage.adyen is None:
            raise ValueError(f"stage {stage.name!r} does not use Adyen (psp {stage.psp!r})")
        self.stage = stage
        self.config: AdyenStage = stage.adyen
        self.api_key_secret = self._secret(
            "ApiKey",
            self.config.api_key_secret,
            name=stage.resource_name("adyen-api-key"),
            description=f"payments {stage.name}: the Adyen API key (X-API-Key) of the web service user; read by the executor",
        )
        self.hmac_key_secret = self._secret(
            "HmacKey",
            self.config.hmac_key_secret,
            name=stage.resource_name("adyen-hmac-key"),
            description=(
                f"payments {stage.name}: the HMAC key of Adyen's Standard webhook (hex), or "
                '{"current": ..., "previous": ..., "previous_valid_until": ...} during a rotation'
            ),
        )

    def _secret(
        self, construct_id: str, existing: str | None, *, name: str, description: str
    ) -> secretsmanager.ISecret:
        if existing:
            if existing.startswith("arn:"):
                return secretsmanager.Secret.from_secret_complete_arn(self, construct_id, existing)
            return secretsmanager.Secret.from_secret_name_v2(self, construct_id, existing)
        secret = secretsmanager.Secret(
            self,
            construct_id,
            secret_name=name,
            description=description,
            removal_policy=self.stage.disposable_removal_policy,
        )
        # created empty: the operator puts the value Adyen issued (a generated string would be a wrong key)
        cfn = secret.node.default_child
        if not isinstance(cfn, secretsmanager.CfnSecret):
            raise TypeError(f"expected the secret's CfnSecret, found {type(cfn).__name__}")
        cfn.add_property_deletion_override("GenerateSecretString")
        acknowledge(secret, "AwsSolutions-SMG4", ROTATION_REASON)
        return secret

    # --- grants ------------------------------------------------------------------------
    def use_api_key(self, executor: PaymentsFunction) -> None:
        """The executor charges through Adyen: its settings, and read access to the API key only."""
        environment = {
            "api_key_secret_arn": self._secret_id(self.api_key_secret),
            "secret_max_age": str(self.config.secret_max_age),
            "merchant_account": self.config.merchant_account,
            "return_url": self.config.return_url,
            "environment": self.config.environment,
        }
        if self.config.live_url_prefix:
            environment["live_url_prefix"] = self.config.live_url_prefix
        for field, value in environment.items():
            executor.function.add_environment(AdyenSettings.env_name(field), value)
        self._grant_read(self.api_key_secret, executor, "the Adyen API key secret")

    def grant_hmac_keys(self, function: PaymentsFunction) -> None:
        """``function`` verifies Adyen's notifications: ``PAYMENTS_PSP_HMAC_KEY_SECRET`` (read by
        ``payments.psp.hmac.configured_keys``) and read access to the HMAC key secret only."""
        function.set_setting("payments_psp_hmac_key_secret", self._secret_id(self.hmac_key_secret))
        function.set_setting("adyen_secret_max_age", str(self.config.secret_max_age))
        self._grant_read(self.hmac_key_secret, function, "the Adyen HMAC key secret")

    @staticmethod
    def _secret_id(secret: secretsmanager.ISecret) -> str:
        """What GetSecretValue is given: the complete ARN, or the name of a secret imported by name."""
        return secret.secret_full_arn or secret.secret_name

    @staticmethod
    def _grant_read(secret: secretsmanager.ISecret, function: PaymentsFunction, what: str) -> None:
        # GetSecretValue only (Powertools needs nothing else); an imported-by-name secret is matched
        # by Secrets Manager's 6-character suffix, as CDK's own grantRead does
        resource = secret.secret_full_arn or f"{secret.secret_arn}-??????"
        function.allow(["secretsmanager:GetSecretValue"], [resource])
        if secret.secret_full_arn is None:
            acknowledge_wildcard_resource(
                function.role,
                resource,
                f"{what} is imported by name: '-??????' matches the 6-character suffix Secrets Manager appends to its ARN.",
            )
