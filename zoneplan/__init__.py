"""zoneplan: geospatial planning for running and expanding an industrial zone."""
