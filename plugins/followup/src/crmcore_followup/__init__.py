"""crmcore follow-up plugin: cadence by grade, first contact, callbacks, care, quiet hours,
the rep roster and due queues (DOMAIN §3).

Python API: ``crmcore_followup.api`` (reps, callback outcomes, due queues, handover).
"""

__version__ = "0.1.0"
