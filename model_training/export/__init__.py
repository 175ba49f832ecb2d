"""Light runtimes of a bundle's model: ``model.onnx`` (ONNX Runtime) and its int8 copy."""
