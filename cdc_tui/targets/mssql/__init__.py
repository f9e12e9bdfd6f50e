"""SQL Server as a target: type mapping and Step 0 DDL, rendered without a connection."""
