# glmer's Poisson model of grouseticks with an observation-level random effect (1 | INDEX), the usual
# overdispersion term (lme4 1.1-31, R 4.2.2). Makes grouseticks_olre_fixef.csv and
# grouseticks_olre_varcorr.csv. Run from this folder:  Rscript grouseticks_olre.R
suppressMessages(library(lme4))
grouse <- read.csv("../data/grouseticks.csv")
for (name in c("INDEX", "BROOD", "LOCATION", "YEAR")) grouse[[name]] <- factor(grouse[[name]])
fit <- glmer(TICKS ~ YEAR + scale(HEIGHT) + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION), grouse,
             family = poisson)
est <- summary(fit)$coefficients
write.csv(data.frame(term = rownames(est), est = est[, 1], se = est[, 2]), "grouseticks_olre_fixef.csv",
          row.names = FALSE)
write.csv(as.data.frame(VarCorr(fit)), "grouseticks_olre_varcorr.csv", row.names = FALSE)
