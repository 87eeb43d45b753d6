# R's performance package: ICC and Nakagawa's R-squared at lme4's ML fits (performance 0.10.2, lme4 1.1-31,
# R 4.2.2, Debian packages). Makes variance_partition.csv: one row per model and quantity, with lme4's
# variance components beside it (to build the same point in Python). Run from this folder:
#   Rscript variance_partition.R
suppressMessages({library(lme4); library(performance); library(insight)})
data_dir <- "../data"
sleep <- read.csv(file.path(data_dir, "sleepstudy.csv"))
sleep$Subject <- factor(sleep$Subject)
reading <- read.csv(file.path(data_dir, "reading_public.csv"))
cbpp <- read.csv(file.path(data_dir, "cbpp.csv"))
cbpp$period <- factor(cbpp$period); cbpp$herd <- factor(cbpp$herd)
grouse <- read.csv(file.path(data_dir, "grouseticks.csv"))
grouse$YEAR <- factor(grouse$YEAR); grouse$BROOD <- factor(grouse$BROOD); grouse$LOCATION <- factor(grouse$LOCATION)
grouse$zHEIGHT <- as.numeric(scale(grouse$HEIGHT))
fits <- list(
  sleepstudy_rs = lmer(Reaction ~ Days + (Days | Subject), sleep, REML = FALSE),
  reading_ri = lmer(geread ~ gevocab + (1 | school), reading, REML = FALSE),
  cbpp_binomial = glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, family = binomial),
  grouseticks_poisson = glmer(TICKS ~ YEAR + zHEIGHT + (1 | BROOD) + (1 | LOCATION), grouse, family = poisson)
)
rows <- list()
for (name in names(fits)) {
  fit <- fits[[name]]
  v <- get_variance(fit)
  i <- icc(fit)
  r <- r2_nakagawa(fit)
  rows[[name]] <- data.frame(
    model = name,
    quantity = c("icc_adjusted", "icc_conditional", "r2_marginal", "r2_conditional",
                 "var_fixed", "var_random", "var_distribution"),
    value = c(i$ICC_adjusted, i$ICC_conditional, r$R2_marginal, r$R2_conditional,
              v$var.fixed, v$var.random, v$var.distribution)
  )
}
write.csv(do.call(rbind, rows), "variance_partition.csv", row.names = FALSE)
