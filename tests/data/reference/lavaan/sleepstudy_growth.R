# lavaan's linear growth model on lme4's sleepstudy in wide form (one column per day, r0..r9), ML.
# Makes sleepstudy_growth_estimates.csv (lavaan 0.6-14, R 4.2.2; run from this folder):
#   Rscript sleepstudy_growth.R
library(lavaan)
long <- read.csv("../data/sleepstudy.csv")
wide <- reshape(long, idvar = "Subject", timevar = "Days", direction = "wide", v.names = "Reaction")
names(wide) <- sub("Reaction.", "r", names(wide), fixed = TRUE)
model <- paste(
  "i =~", paste0("1*r", 0:9, collapse = " + "), "\n",
  "s =~", paste0(0:9, "*r", 0:9, collapse = " + ")
)
fit <- growth(model, data = wide)
est <- parameterEstimates(fit)
write.csv(est[, c("lhs", "op", "rhs", "est", "se")], "sleepstudy_growth_estimates.csv", row.names = FALSE)
