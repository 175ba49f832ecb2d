"""What a page may open: the allowed data roots, uploaded tiles and .zip archives, the drop zone, regions,
slides, labelled datasets and the shipped example tiles."""
