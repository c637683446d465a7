"""The AWS CDK app of the serverless payment system (``python3 -m infra.app``; see docs/deploy.md)."""
