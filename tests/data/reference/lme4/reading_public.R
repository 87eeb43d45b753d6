# lmer's ML fits (REML = FALSE) of the project's simulated reading_public data: geread ~ gevocab + (1 | school)
# (reading_public_ri_ml_*) and geread ~ gevocab + (1 + gevocab | school) (reading_public_rs_ml_*). For each fit
# *_fixef.csv (term, est, se from summary()), *_varcorr.csv (as.data.frame(VarCorr())) and *_loglik.csv (logLik
# with its df and nobs). lme4 1.1-31, R 4.2.2 (Debian packages). Run from this folder:  Rscript reading_public.R
# The random-slope fit's likelihood is flat near its maximum and lmer's default optimizer (nloptwrap) stops at a
# point that moves with the last bits of the arithmetic: a rerun on another machine (same R and package
# versions) matched the committed logLik to 5e-7 but the intercept-slope covariance only to 8e-4 (relative) and
# the slope's SE to 8e-5; adding 1e-15 relative noise to geread moves them as much.
suppressMessages(library(lme4))
reading <- read.csv("../data/reading_public.csv")
reading$school <- factor(reading$school)
write_fit <- function(fit, prefix) {
  est <- summary(fit)$coefficients
  write.csv(data.frame(term = rownames(est), est = est[, 1], se = est[, 2]), paste0(prefix, "_fixef.csv"),
            row.names = FALSE)
  write.csv(as.data.frame(VarCorr(fit)), paste0(prefix, "_varcorr.csv"), row.names = FALSE)
  ll <- logLik(fit)
  write.csv(data.frame(logLik = as.numeric(ll), df = attr(ll, "df"), nobs = nobs(fit)),
            paste0(prefix, "_loglik.csv"), row.names = FALSE)
}
write_fit(lmer(geread ~ gevocab + (1 | school), reading, REML = FALSE), "reading_public_ri_ml")
write_fit(lmer(geread ~ gevocab + (1 + gevocab | school), reading, REML = FALSE), "reading_public_rs_ml")
