"""The ML layer's runtime: features and labels, signals and gates, the ONNX model, the DI
pipeline and frozen models. Imported by the strategy and the FreqAI model."""
