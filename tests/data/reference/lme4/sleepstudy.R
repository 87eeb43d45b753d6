# lmer's ML fits (REML = FALSE) of lme4's sleepstudy: Reaction ~ Days + (Days | Subject) (sleepstudy_ml_*) and
# the uncorrelated version (Days || Subject) (sleepstudy_uncorrelated_ml_*). For each fit *_fixef.csv (term, est,
# se from summary()), *_varcorr.csv (as.data.frame(VarCorr())) and *_loglik.csv (logLik with its df and nobs).
# lme4 1.1-31, R 4.2.2 (Debian packages). sleepstudy_coef.csv is made by predictions.R.
# Run from this folder:  Rscript sleepstudy.R
suppressMessages(library(lme4))
sleep <- read.csv("../data/sleepstudy.csv")
sleep$Subject <- factor(sleep$Subject)
write_fit <- function(fit, prefix) {
  est <- summary(fit)$coefficients
  write.csv(data.frame(term = rownames(est), est = est[, 1], se = est[, 2]), paste0(prefix, "_fixef.csv"),
            row.names = FALSE)
  write.csv(as.data.frame(VarCorr(fit)), paste0(prefix, "_varcorr.csv"), row.names = FALSE)
  ll <- logLik(fit)
  write.csv(data.frame(logLik = as.numeric(ll), df = attr(ll, "df"), nobs = nobs(fit)),
            paste0(prefix, "_loglik.csv"), row.names = FALSE)
}
write_fit(lmer(Reaction ~ Days + (Days | Subject), sleep, REML = FALSE), "sleepstudy_ml")
write_fit(lmer(Reaction ~ Days + (Days || Subject), sleep, REML = FALSE), "sleepstudy_uncorrelated_ml")
