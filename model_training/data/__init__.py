"""Tiles from files: decoding, the dataset layouts, subsets, the PCam download and the H&E stain space."""
