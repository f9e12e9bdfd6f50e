"""Settings: TOML file plus CDC_TUI_* environment variables, environment wins."""
