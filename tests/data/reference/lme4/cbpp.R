# glmer's binomial (logit) model of lme4's cbpp, Laplace ML: cbind(incidence, size - incidence) ~ period +
# (1 | herd). Makes cbpp_binomial_fixef.csv (term, est, se from summary()), cbpp_binomial_varcorr.csv
# (as.data.frame(VarCorr())) and cbpp_binomial_loglik.csv (logLik with its df and nobs). lme4 1.1-31, R 4.2.2
# (Debian packages). cbpp_ranef.csv is made by predictions.R. Run from this folder:  Rscript cbpp.R
suppressMessages(library(lme4))
cbpp <- read.csv("../data/cbpp.csv")
cbpp$period <- factor(cbpp$period); cbpp$herd <- factor(cbpp$herd)
fit <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, family = binomial)
est <- summary(fit)$coefficients
write.csv(data.frame(term = rownames(est), est = est[, 1], se = est[, 2]), "cbpp_binomial_fixef.csv",
          row.names = FALSE)
write.csv(as.data.frame(VarCorr(fit)), "cbpp_binomial_varcorr.csv", row.names = FALSE)
ll <- logLik(fit)
write.csv(data.frame(logLik = as.numeric(ll), df = attr(ll, "df"), nobs = nobs(fit)), "cbpp_binomial_loglik.csv",
          row.names = FALSE)
