"""zoneplan spatial core: what the zone data is and how it is stored."""
