"""Tables, significance tests and plots built from a results store and results/reference/ only."""
