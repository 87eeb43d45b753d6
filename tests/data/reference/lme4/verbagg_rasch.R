# The Rasch (1PL) model of lme4's public VerbAgg data (De Boeck & Wilson 2004: 316 persons x 24 binary items)
# as glmer's logistic model with a person random intercept, ML by adaptive Gauss-Hermite quadrature with 25
# nodes: r2 ~ 0 + item + (1 | id). Writes ../data/VerbAgg_r2_wide.csv (one row per person: id, Gender, Anger
# and the 24 items' r2 coded 0/1) and verbagg_rasch_{fixef,varcorr,loglik}.csv (the items' intercepts d_k with
# their SEs, the person SD, the marginal log-likelihood), the reference of pymlsem.irt(discrimination="common").
# lme4 1.1-31, R 4.2.2 (Debian packages). Run from this folder:  Rscript verbagg_rasch.R
suppressMessages(library(lme4))
data(VerbAgg, package = "lme4")
VerbAgg$y <- as.integer(VerbAgg$r2 == "Y")
wide <- reshape(VerbAgg[, c("id", "Gender", "Anger", "item", "y")], idvar = c("id", "Gender", "Anger"),
                timevar = "item", direction = "wide")
names(wide) <- sub("^y\\.", "", names(wide))
write.csv(wide, "../data/VerbAgg_r2_wide.csv", row.names = FALSE)
fit <- glmer(y ~ 0 + item + (1 | id), VerbAgg, family = binomial, nAGQ = 25,
             control = glmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5)))
est <- summary(fit)$coefficients
write.csv(data.frame(term = sub("^item", "", rownames(est)), est = est[, 1], se = est[, 2]),
          "verbagg_rasch_fixef.csv", row.names = FALSE)
write.csv(as.data.frame(VarCorr(fit)), "verbagg_rasch_varcorr.csv", row.names = FALSE)
ll <- logLik(fit)
write.csv(data.frame(logLik = as.numeric(ll), df = attr(ll, "df"), nobs = nobs(fit)),
          "verbagg_rasch_loglik.csv", row.names = FALSE)
print(ll)
