"""The only code that talks to a server: connect (host keys checked), run/probe/stage, sessions, web auth."""
