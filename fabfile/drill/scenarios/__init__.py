"""The drill's scenarios, one module each: what to break, which alert to expect from which host's
Alertmanager, how to restore — and how to make whole whatever happens. The runner (`runner.Drill`) drives
them all through the same delivery path (see `contract.Scenario`)."""
