"""Pixel and figure helpers shared by pages: enlarged tiles, slide figures, the site-calibration message."""
