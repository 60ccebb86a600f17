"""The only package that imports ray: actors, the reward Serve application,
metrics and the controller loop."""
