"""The only code that talks to a server: connect, run/probe/stage, secret masking, web auth for curl."""
