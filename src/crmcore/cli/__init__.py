"""The ``crm`` command line (click), extended by plugins through ``crm_cli_commands``."""
