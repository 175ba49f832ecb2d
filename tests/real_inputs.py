"""Names of the real inputs the tests share (the files themselves come from ../shared via environment variables)."""

SVS = "CMU-1-Small-Region.svs"  # the Aperio slide in $PATHREVIEW_SLIDES
