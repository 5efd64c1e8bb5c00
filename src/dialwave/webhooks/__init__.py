"""Outgoing webhooks: signing (Standard Webhooks), the SSRF guard, the HTTP transport, the delivery worker."""
