# The cumulative-logit mixed model of the wine data (Randall 1989; R package ordinal's `wine`): bitterness
# rating (5 ordered categories) of 72 wines by 9 judges, temperature and contact as fixed effects, a random
# intercept per judge (ordinal 2022.11-16, R 4.2.2; adaptive Gauss-Hermite, nAGQ = 10). Makes ../data/wine.csv,
# wine_clmm_fixef.csv (the cut-points "1|2" ... and the fixed effects, estimates and standard errors) and
# wine_clmm_varcorr.csv (the judge SD). Run from this folder:  Rscript wine_clmm.R
suppressMessages(library(ordinal))
data(wine)
write.csv(data.frame(rating = as.integer(wine$rating), temp = as.character(wine$temp),
                     contact = as.character(wine$contact), judge = as.character(wine$judge)),
          "../data/wine.csv", row.names = FALSE)
fit <- clmm(rating ~ temp + contact + (1 | judge), data = wine, nAGQ = 10)
est <- summary(fit)$coefficients
write.csv(data.frame(term = rownames(est), est = est[, 1], se = est[, 2]), "wine_clmm_fixef.csv",
          row.names = FALSE)
write.csv(data.frame(grp = "judge", sdcor = attr(VarCorr(fit)$judge, "stddev"), logLik = fit$logLik),
          "wine_clmm_varcorr.csv", row.names = FALSE)
