# lavaan's three-factor CFA of HolzingerSwineford1939 (complete data), ML with a mean structure:
# cfa(model, data, meanstructure = TRUE). Makes hs_cfa_estimates.csv (parameterEstimates()),
# hs_cfa_partable.csv (parTable()) and hs_cfa_fitmeasures.csv (fitMeasures() as measure/value). And one factor
# for the nine tests with std.lv = TRUE (the model whose marker x1 loads weakly):
# std_lv_hs_one_factor_{partable,estimates,fitmeasures}.csv.
# lavaan 0.6-14, R 4.2.2 (Debian packages). Run from this folder:  Rscript hs_cfa.R
suppressMessages(library(lavaan))
hs <- read.csv("../data/HolzingerSwineford1939.csv")
model <- "
  visual =~ x1 + x2 + x3
  textual =~ x4 + x5 + x6
  speed =~ x7 + x8 + x9
"
fit <- cfa(model, data = hs, meanstructure = TRUE)
write.csv(parameterEstimates(fit), "hs_cfa_estimates.csv", row.names = FALSE)
write.csv(parTable(fit), "hs_cfa_partable.csv", row.names = FALSE)
fm <- fitMeasures(fit)
write.csv(data.frame(measure = names(fm), value = as.numeric(fm)), "hs_cfa_fitmeasures.csv", row.names = FALSE)
one_factor <- "g =~ x1 + x2 + x3 + x4 + x5 + x6 + x7 + x8 + x9"
std_lv <- cfa(one_factor, data = hs, meanstructure = TRUE, std.lv = TRUE)  # each factor's (residual) variance at 1, its loadings free
write.csv(parTable(std_lv), "std_lv_hs_one_factor_partable.csv", row.names = FALSE)
write.csv(parameterEstimates(std_lv), "std_lv_hs_one_factor_estimates.csv", row.names = FALSE)
fm <- fitMeasures(std_lv)
write.csv(data.frame(measure = names(fm), value = as.numeric(fm)), "std_lv_hs_one_factor_fitmeasures.csv", row.names = FALSE)
