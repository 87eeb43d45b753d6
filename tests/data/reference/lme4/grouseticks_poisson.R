# glmer's Poisson (log) model of lme4's grouseticks, Laplace ML: TICKS ~ YEAR + scale(HEIGHT) + (1 | BROOD) +
# (1 | LOCATION). Makes grouseticks_poisson_fixef.csv (term, est, se from summary()),
# grouseticks_poisson_varcorr.csv (as.data.frame(VarCorr())) and grouseticks_poisson_loglik.csv (logLik with its
# df and nobs). lme4 1.1-31, R 4.2.2 (Debian packages). Run from this folder:  Rscript grouseticks_poisson.R
# glmer's default optimizer stops near, not at, the maximum, at a point that moves with the last bits of the
# arithmetic: a rerun on another machine (same R and package versions) matched the committed files to 2e-5
# (relative); the committed values lie within 2e-6 of a fit converged with bobyqa at rhoend = 1e-12.
suppressMessages(library(lme4))
grouse <- read.csv("../data/grouseticks.csv")
for (name in c("INDEX", "BROOD", "LOCATION", "YEAR")) grouse[[name]] <- factor(grouse[[name]])
fit <- glmer(TICKS ~ YEAR + scale(HEIGHT) + (1 | BROOD) + (1 | LOCATION), grouse, family = poisson)
est <- summary(fit)$coefficients
write.csv(data.frame(term = rownames(est), est = est[, 1], se = est[, 2]), "grouseticks_poisson_fixef.csv",
          row.names = FALSE)
write.csv(as.data.frame(VarCorr(fit)), "grouseticks_poisson_varcorr.csv", row.names = FALSE)
ll <- logLik(fit)
write.csv(data.frame(logLik = as.numeric(ll), df = attr(ll, "df"), nobs = nobs(fit)),
          "grouseticks_poisson_loglik.csv", row.names = FALSE)
