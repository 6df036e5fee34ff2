"""Database layer: models, engines and sessions, migrations."""
