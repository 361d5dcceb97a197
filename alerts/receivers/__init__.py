"""Receiver integrations: console, JSONL file, Slack, email, PagerDuty, generic webhook."""
