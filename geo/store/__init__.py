"""zoneplan storage backends behind one Store interface."""
