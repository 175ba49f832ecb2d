"""The whole-slide pipeline: reader → tissue → grid → tiles → scoring → outputs, and labelled test slides."""
