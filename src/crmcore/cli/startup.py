"""Imported first by ``crmcore.cli.main``: the classes every command defines compile their
generated methods through ``crmcore.codecache`` (cached between runs, like bytecode)."""

from crmcore import codecache

codecache.install()
