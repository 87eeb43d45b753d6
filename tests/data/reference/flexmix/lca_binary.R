# Maximum-likelihood latent class model (2 classes, 4 binary items) with flexmix's EM, the reference of
# tests/latent_class/test_latent_class.py::test_single_level_posterior_agrees_with_flexmix_ml.
# Data: lca_binary_data.csv, the items y1-y4 of pymlsem.datasets.designs.multilevel_latent_classes(seed=2026)
# (the clusters are ignored: a single-level model of these items is correctly specified, with the classes'
# marginal proportions). Run from this folder: Rscript lca_binary.R (R 4.2.2, flexmix 2.3-18, Debian).
suppressPackageStartupMessages(library(flexmix))
data <- read.csv("lca_binary_data.csv")
items <- as.matrix(data[, c("y1", "y2", "y3", "y4")])
set.seed(1)
# 20 EM runs from random starts, the best kept; converged to a relative change of 1e-12
fits <- stepFlexmix(items ~ 1, k = 2, nrep = 20, model = FLXMCmvbinary(),
                    control = list(tolerance = 1e-12, iter.max = 10000, verbose = 0))
fit <- fits  # with one k, stepFlexmix returns the best fit itself
centers <- parameters(fit)  # P(y = 1 | class): items x classes
rows <- list()
for (k in 1:2) {
  rows[[length(rows) + 1]] <- data.frame(parameter = "class_proportion", item = "", class = k,
                                         estimate = prior(fit)[k])
  for (h in 1:4) {
    rows[[length(rows) + 1]] <- data.frame(parameter = "p_yes", item = colnames(items)[h], class = k,
                                           estimate = centers[h, k])
  }
}
out <- do.call(rbind, rows)
write.csv(out, "lca_binary_estimates.csv", row.names = FALSE)
cat(sprintf("logLik %.6f\n", as.numeric(logLik(fit))))
