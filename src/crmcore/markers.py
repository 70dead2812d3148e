"""The catalog marker ``N_``, in a module that imports nothing, so the chart and report data
types (``crmcore.charts``, used by ``crmcore.registry``) can mark their words without
importing the translation machinery (``crmcore.i18n``, which reads the plugin registry)."""


def N_(message: str) -> str:
    """Mark ``message`` for the catalog without translating it here: report titles, chart
    labels and the like are plain strings, translated where they are shown."""
    return message
