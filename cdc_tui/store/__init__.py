"""Metadata DB: models, migrations, repositories."""
