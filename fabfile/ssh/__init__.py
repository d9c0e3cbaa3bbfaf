"""The only code that talks to a server: connect, transport (run), probe, stage, masking, web auth."""
