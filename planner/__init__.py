"""zoneplan decisions: pure functions over the zone data, no web, no I/O."""
