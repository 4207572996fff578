"""Webhooks: alerts POSTed, signed per Standard Webhooks, to the endpoints operators name."""
