# A second two-level model on lavaan's Demo.twolevel, ML: two correlated factors within (fw1 by y1-y3, fw2 by
# y4-y6), one factor between (fb by y1-y6); sem(model, data, cluster = "cluster"). Makes
# demo_twolevel_m2_estimates.csv (parameterEstimates()), demo_twolevel_m2_partable.csv (parTable()) and
# demo_twolevel_m2_fitmeasures.csv (fitMeasures() as measure/value). lavaan 0.6-14, R 4.2.2 (Debian packages).
# Run from this folder:  Rscript demo_twolevel_m2.R
suppressMessages(library(lavaan))
d <- read.csv("../data/Demo.twolevel.csv")
model <- "
level: within
  fw1 =~ y1 + y2 + y3
  fw2 =~ y4 + y5 + y6
level: between
  fb =~ y1 + y2 + y3 + y4 + y5 + y6
"
fit <- sem(model, data = d, cluster = "cluster")
write.csv(parameterEstimates(fit), "demo_twolevel_m2_estimates.csv", row.names = FALSE)
write.csv(parTable(fit), "demo_twolevel_m2_partable.csv", row.names = FALSE)
fm <- fitMeasures(fit)
write.csv(data.frame(measure = names(fm), value = as.numeric(fm)), "demo_twolevel_m2_fitmeasures.csv",
          row.names = FALSE)
