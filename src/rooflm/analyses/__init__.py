"""The analyses built on a priced step: one point (analyze), a grid (sweep), the critical batch, the quantization
comparison, the regime table; their typed results (report) and the catalog's JSON documents (documents).
"""
