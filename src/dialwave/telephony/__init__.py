"""Carriers: one Protocol (`base.Carrier`: originate, hangup, poll, status, close) and one module per
carrier: `simulated` (outcomes drawn from a model; demos, tests, forecasts), `sip` (+ `sip_tcp`) and
`twilio`."""
