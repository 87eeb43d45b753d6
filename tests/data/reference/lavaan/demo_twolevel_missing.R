# lavaan's seed two-level model on Demo.twolevel with missing values, full information ML (missing = "ml"):
# the saturated model (h1) of incomplete two-level data, and the chi-square and SRMR against it. Values are
# removed deterministically (1-based row r: y1 when r %% 7 == 0, y2 when r %% 11 == 3, y3 when
# r %% 13 == 5, and y1..y3 in every row of cluster 1). Makes demo_twolevel_missing_fitmeasures.csv,
# demo_twolevel_missing_estimates.csv and demo_twolevel_missing_h1.csv (the h1 means and covariances per
# level), and the same saturated model fitted to the end (demo_twolevel_missing_saturated_tight*.csv).
# lavaan 0.6-14, R 4.2.2. Run from this folder:  Rscript demo_twolevel_missing.R
suppressMessages(library(lavaan))
d <- read.csv("../data/Demo.twolevel.csv")
r <- seq_len(nrow(d))
d$y1[r %% 7 == 0] <- NA
d$y2[r %% 11 == 3] <- NA
d$y3[r %% 13 == 5] <- NA
d[d$cluster == 1, c("y1", "y2", "y3")] <- NA
model <- "
level: 1
  fw =~ y1 + y2 + y3
  fw ~ x1 + x2 + x3
level: 2
  fb =~ y1 + y2 + y3
  fb ~ w1 + w2
"
fit <- sem(model, data = d, cluster = "cluster", missing = "ml")
est <- parameterEstimates(fit)
write.csv(est[, c("lhs", "op", "rhs", "block", "level", "est", "se")], "demo_twolevel_missing_estimates.csv",
          row.names = FALSE)
fm <- fitMeasures(fit, c("chisq", "df", "logl", "unrestricted.logl", "srmr_within", "srmr_between"))
write.csv(data.frame(measure = names(fm), value = as.numeric(fm)), "demo_twolevel_missing_fitmeasures.csv",
          row.names = FALSE)
# means and covariances per level, one row per level and variable
moments_table <- function(levels) {
  rows <- list()
  for (level in 1:2) {
    m <- levels[[level]]
    rows[[level]] <- data.frame(level = level, variable = names(m$mean), mean = as.numeric(m$mean),
                                as.data.frame(unclass(m$cov)), check.names = FALSE)
  }
  merge(rows[[1]], rows[[2]], all = TRUE, sort = FALSE)
}
write.csv(moments_table(lavInspect(fit, "h1")), "demo_twolevel_missing_h1.csv", row.names = FALSE, na = "")
# The same saturated model fitted to the end: lavaan stops its h1 fit at rel.tol = 1e-7 (about 0.002 below the
# maximum here); written as a lavaan model (every variance and covariance free at the levels where the
# variables vary, fixed.x = FALSE: the joint density of all observed values) and fitted with rel.tol = 1e-10.
saturated <- "
level: 1
  y1 ~~ y2 + y3 + x1 + x2 + x3
  y2 ~~ y3 + x1 + x2 + x3
  y3 ~~ x1 + x2 + x3
  x1 ~~ x2 + x3
  x2 ~~ x3
level: 2
  y1 ~~ y2 + y3 + w1 + w2
  y2 ~~ y3 + w1 + w2
  y3 ~~ w1 + w2
  w1 ~~ w2
"
tight <- sem(saturated, data = d, cluster = "cluster", missing = "ml", fixed.x = FALSE,
             control = list(rel.tol = 1e-10, iter.max = 100000, eval.max = 100000))
write.csv(data.frame(measure = c("logl", "df"), value = c(fitMeasures(tight, "logl"), fitMeasures(tight, "df"))),
          "demo_twolevel_missing_saturated_tight.csv", row.names = FALSE)
write.csv(moments_table(lavInspect(tight, "implied")), "demo_twolevel_missing_saturated_tight_moments.csv",
          row.names = FALSE, na = "")
