# lavaan's three-factor CFA of HolzingerSwineford1939 (complete data), ML with a mean structure:
# cfa(model, data, meanstructure = TRUE). Makes hs_cfa_estimates.csv (parameterEstimates()),
# hs_cfa_partable.csv (parTable()) and hs_cfa_fitmeasures.csv (fitMeasures() as measure/value).
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
