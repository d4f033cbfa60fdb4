"""farm_bringup: the FARM node graph's launch files, YAML and the ``farm-graph`` runner."""
