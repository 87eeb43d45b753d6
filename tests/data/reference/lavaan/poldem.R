# Bollen's political democracy models on lavaan's PoliticalDemocracy, ML (lavaan 0.6-14, R 4.2.2, Debian
# packages). Run from this folder:  Rscript poldem.R
# 1. The SEM of lavaan's tutorial with the loadings of y2/y6, y3/y7 and y4/y8 equal by the labels a, b, c and the
#    tutorial's residual covariances: makes poldem_sem_estimates.csv (parameterEstimates(); the "==" rows are
#    left out by its defaults), poldem_sem_partable.csv (parTable(), "==" rows included) and
#    poldem_sem_fitmeasures.csv (fitMeasures() as measure/value).
# 2. A mediation model (ind60 -> dem60 -> dem65, no residual covariances, no equal loadings) with the defined
#    parameters indirect := a*b and total := c + a*b: makes poldem_mediation_estimates.csv (parameterEstimates()).
# 3. The SEM of 1. with std.lv = TRUE (the equal loadings now equal with both factor variances at 1): makes
#    std_lv_poldem_{partable,estimates,fitmeasures}.csv.
suppressMessages(library(lavaan))
pd <- read.csv("../data/PoliticalDemocracy.csv")
sem_model <- "
  ind60 =~ x1 + x2 + x3
  dem60 =~ y1 + a*y2 + b*y3 + c*y4
  dem65 =~ y5 + a*y6 + b*y7 + c*y8
  dem60 ~ ind60
  dem65 ~ ind60 + dem60
  y1 ~~ y5
  y2 ~~ y4 + y6
  y3 ~~ y7
  y4 ~~ y8
  y6 ~~ y8
"
fit <- sem(sem_model, data = pd)
write.csv(parameterEstimates(fit), "poldem_sem_estimates.csv", row.names = FALSE)
write.csv(parTable(fit), "poldem_sem_partable.csv", row.names = FALSE)
fm <- fitMeasures(fit)
write.csv(data.frame(measure = names(fm), value = as.numeric(fm)), "poldem_sem_fitmeasures.csv",
          row.names = FALSE)
mediation_model <- "
  dem60 =~ y1 + y2 + y3 + y4
  ind60 =~ x1 + x2 + x3
  dem65 =~ y5 + y6 + y7 + y8
  dem60 ~ a*ind60
  dem65 ~ b*dem60 + c*ind60
  indirect := a*b
  total := c + a*b
"
med <- sem(mediation_model, data = pd)
write.csv(parameterEstimates(med), "poldem_mediation_estimates.csv", row.names = FALSE)
std_lv <- sem(sem_model, data = pd, std.lv = TRUE)  # each factor's (residual) variance at 1, its loadings free
write.csv(parTable(std_lv), "std_lv_poldem_partable.csv", row.names = FALSE)
write.csv(parameterEstimates(std_lv), "std_lv_poldem_estimates.csv", row.names = FALSE)
fm <- fitMeasures(std_lv)
write.csv(data.frame(measure = names(fm), value = as.numeric(fm)), "std_lv_poldem_fitmeasures.csv", row.names = FALSE)
