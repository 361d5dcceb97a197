"""Alerting: incidents from assessments, routing (Alertmanager's model), receivers, delivery.

Pure Python, no Faust, no wall clock: "now" comes in through `clock.Clock` or event time.
"""

from crisiswatch.alerts.incidents import AckEvent, IncidentConfig, IncidentEvent, IncidentTracker

__all__ = ["AckEvent", "IncidentConfig", "IncidentEvent", "IncidentTracker"]
