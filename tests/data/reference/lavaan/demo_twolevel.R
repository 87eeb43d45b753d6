# lavaan's seed two-level model on Demo.twolevel, ML (sem(model, data, cluster = "cluster"), defaults
# otherwise: fixed.x = TRUE). Makes demo_twolevel_estimates.csv (parameterEstimates()),
# demo_twolevel_partable.csv (parTable()), demo_twolevel_fitmeasures.csv (fitMeasures() as measure/value),
# demo_twolevel_standardized.csv (standardizedSolution()), the model-implied moments at the MLE
# (lavInspect(fit, "implied"): demo_twolevel_implied_{within,between}_{cov,mean}.csv) and the saturated (h1)
# level-specific sample statistics (lavInspect(fit, "sampstat"): demo_twolevel_h1_{within,between}_{cov,mean}.csv),
# the moment files with row names; and the same model with std.lv = TRUE: std_lv_seed_{partable,estimates,
# fitmeasures}.csv. lavaan 0.6-14, R 4.2.2 (Debian packages).
# Run from this folder:  Rscript demo_twolevel.R
suppressMessages(library(lavaan))
d <- read.csv("../data/Demo.twolevel.csv")
model <- "
level: 1
  fw =~ y1 + y2 + y3
  fw ~ x1 + x2 + x3
level: 2
  fb =~ y1 + y2 + y3
  fb ~ w1 + w2
"
fit <- sem(model, data = d, cluster = "cluster")
write.csv(parameterEstimates(fit), "demo_twolevel_estimates.csv", row.names = FALSE)
write.csv(parTable(fit), "demo_twolevel_partable.csv", row.names = FALSE)
fm <- fitMeasures(fit)
write.csv(data.frame(measure = names(fm), value = as.numeric(fm)), "demo_twolevel_fitmeasures.csv",
          row.names = FALSE)
write.csv(standardizedSolution(fit), "demo_twolevel_standardized.csv", row.names = FALSE)
# one file per level and moment; the covariance matrices and the (one-row) mean vectors keep their row names
write_moments <- function(moments, prefix) {
  for (level in 1:2) {
    name <- c("within", "between")[level]
    write.csv(unclass(moments[[level]]$cov), paste0(prefix, name, "_cov.csv"))
    write.csv(t(moments[[level]]$mean), paste0(prefix, name, "_mean.csv"))
  }
}
write_moments(lavInspect(fit, "implied"), "demo_twolevel_implied_")
write_moments(lavInspect(fit, "sampstat"), "demo_twolevel_h1_")
std_lv <- sem(model, data = d, cluster = "cluster", std.lv = TRUE)  # each factor's (residual) variance at 1, its loadings free
write.csv(parTable(std_lv), "std_lv_seed_partable.csv", row.names = FALSE)
write.csv(parameterEstimates(std_lv), "std_lv_seed_estimates.csv", row.names = FALSE)
fm <- fitMeasures(std_lv)
write.csv(data.frame(measure = names(fm), value = as.numeric(fm)), "std_lv_seed_fitmeasures.csv", row.names = FALSE)
