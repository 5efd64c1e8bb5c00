"""HTTP API: `app.create_app` lists every router; `routes/` has one module per URL prefix (thin: parse,
call a service, serialise); `schemas` the request and response shapes; `serialize` rows to JSON;
`deps` what a route is given (`AppContext`, the principal); `errors` the one place errors become
HTTP; `middleware` request ids, the access log and Idempotency-Key."""
