"""Device controllers shipped with LinkServer."""
