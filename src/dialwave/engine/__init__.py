"""The dialer engine. `dispatcher.Engine` owns the state of the running campaigns and composes the
parts, each a module with one job:

    capacity     concurrency (campaign, organization, caller id) and pace slots
    claims       take due leads in one transaction, check the guards, record the intent to dial
    dial         the guards again right before a dial, and the carrier request
    predial      the optional pre-dial hook (asked when a lead gets its slot)
    endings      what an ended call changes (lead, counters, automatic DNC, events)
    write_buffer the buffered writes and the group commit that flushes them
    event_log    events written with the changes they describe
    lifecycle    owned campaigns, scheduled starts, end_at, auto-complete, the circuit breaker
    recovery     calls whose end we did not hear of (start-up, takeover, lost callbacks)
    leases       which worker dispatches which campaign (PostgreSQL advisory locks)
    context_push the call context pushed to the agent runtime when a call is answered
    runner       real-time, scaled and virtual drivers of the tick
    service      the engine as a background service of `dialwave serve`
    handle       what the API may ask of the engine in its process
"""
