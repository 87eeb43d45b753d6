# lavaan's CFA of HolzingerSwineford1939 with missing values, full information ML (missing = "ml"):
# the saturated model (h1) of incomplete data by EM, and the chi-square against it. Values are removed
# deterministically (1-based row r: x1 when r %% 7 == 0, x5 when r %% 11 == 3, x9 when r %% 13 == 5).
# Makes hs_missing_estimates.csv, hs_missing_fitmeasures.csv and hs_missing_h1.csv (EM means and
# covariances). lavaan 0.6-14, R 4.2.2. Run from this folder:  Rscript hs_missing.R
library(lavaan)
hs <- read.csv("../data/HolzingerSwineford1939.csv")
r <- seq_len(nrow(hs))
hs$x1[r %% 7 == 0] <- NA
hs$x5[r %% 11 == 3] <- NA
hs$x9[r %% 13 == 5] <- NA
model <- "visual =~ x1 + x2 + x3\n textual =~ x4 + x5 + x6\n speed =~ x7 + x8 + x9"
fit <- cfa(model, data = hs, missing = "ml")
est <- parameterEstimates(fit)
write.csv(est[, c("lhs", "op", "rhs", "est", "se")], "hs_missing_estimates.csv", row.names = FALSE)
fm <- fitMeasures(fit, c("chisq", "df", "logl", "unrestricted.logl", "srmr"))
write.csv(data.frame(measure = names(fm), value = as.numeric(fm)), "hs_missing_fitmeasures.csv",
          row.names = FALSE)
h1 <- lavInspect(fit, "sampstat.h1")
write.csv(data.frame(variable = names(h1$mean), mean = as.numeric(h1$mean), h1$cov, check.names = FALSE),
          "hs_missing_h1.csv", row.names = FALSE)
