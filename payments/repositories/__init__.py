"""DynamoDB data access. Each module owns one table and documents its item layout."""
