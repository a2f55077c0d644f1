"""One step of one replica, priced: the inputs resolved (inputs, profiles), the operators built (graph, step,
speculation), each put on the roofline (roofline, levels, evaluate), the engine's costs added (engine) and the
device's memory accounted (memory).

Nothing here names a command-line flag or imports an analysis, the serving model or a presentation layer.
"""
