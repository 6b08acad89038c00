import numpy as np

from tests._compare import compare


def test_example_graph_values():
    compare(lambda x: x ** 2 + x + 1, lambda x: x ** 2 + x + 1, np.array(1.0))
