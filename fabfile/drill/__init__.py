"""The alert drill: scenarios, the server side it acts on, the bounds the rules promise, its timeline."""
