"""Sub-commands of the zoneplan command line, one module per domain."""
