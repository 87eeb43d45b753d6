# effectsize's "basic" standardized fixed effects (standardize_parameters(method = "basic")) of three lme4
# fits: lmer(Reaction ~ Days + (Days | Subject), REML = FALSE) on sleepstudy, lmer(geread ~ gevocab +
# (1 | school), REML = FALSE) on reading_public, and glmer's binomial cbind(incidence, size - incidence) ~
# period + (1 | herd) on cbpp. Makes standardized_fixef.csv (model, term, est: lme4's estimate, std:
# effectsize's Std_Coefficient). effectsize 0.8.3, lme4 1.1-31, R 4.2.2 (Debian packages).
# Run from this folder:  Rscript standardized_fixef.R
suppressMessages({library(lme4); library(effectsize)})
data_dir <- "../data"
sleep <- read.csv(file.path(data_dir, "sleepstudy.csv")); sleep$Subject <- factor(sleep$Subject)
reading <- read.csv(file.path(data_dir, "reading_public.csv")); reading$school <- factor(reading$school)
cbpp <- read.csv(file.path(data_dir, "cbpp.csv"))
cbpp$period <- factor(cbpp$period); cbpp$herd <- factor(cbpp$herd)
fits <- list(
  sleepstudy = lmer(Reaction ~ Days + (Days | Subject), sleep, REML = FALSE),
  reading = lmer(geread ~ gevocab + (1 | school), reading, REML = FALSE),
  cbpp = glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, family = binomial)
)
rows <- lapply(names(fits), function(name) {
  std <- standardize_parameters(fits[[name]], method = "basic")
  data.frame(model = name, term = std$Parameter, est = fixef(fits[[name]])[std$Parameter],
             std = std$Std_Coefficient)
})
write.csv(do.call(rbind, rows), "standardized_fixef.csv", row.names = FALSE)
