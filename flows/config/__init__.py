"""Run configuration: settings, accounts, the one frozen ``RunConfig``."""
