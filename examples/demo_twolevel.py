"""Fit the two-level SEM of lavaan's multilevel tutorial to Demo.twolevel and print its summary.

Within clusters a factor fw measured by y1-y3 is regressed on x1-x3; between clusters a factor fb
measured by the cluster parts of y1-y3 is regressed on the cluster-level covariates w1 and w2.
"""

import pymlsem
from pymlsem.datasets import load_dataset

MODEL = """
level: 1
    fw =~ y1 + y2 + y3
    fw ~ x1 + x2 + x3
level: 2
    fb =~ y1 + y2 + y3
    fb ~ w1 + w2
"""

if __name__ == "__main__":
    data = load_dataset("Demo.twolevel")
    fit = pymlsem.sem(MODEL, data, cluster="cluster", random_seed=2026, progressbar=False)
    print(fit.summary())
