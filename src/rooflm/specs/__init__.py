"""Input specifications: model, hardware, quantization, workload. They know nothing of operators."""
