"""Steps over SSH (read state -> decide -> apply -> confirm) and the runner that runs them per host."""
