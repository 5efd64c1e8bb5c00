"""Use cases, one module per resource (agents, phone_numbers, campaigns, leads, lead_import, dnc,
calls, webhooks, auth, idempotency, carriers, health): each opens the transaction it needs and calls
repositories. Services take and return plain values and rows; the API shapes them."""
