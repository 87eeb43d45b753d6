"""Item response theory models (:func:`pymlsem.irt`): binary items, a normal trait integrated out of the
log-density on a grid, a cluster part of the trait sampled as random effects."""
