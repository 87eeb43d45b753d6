# A second two-level model on lavaan's Demo.twolevel, ML: two correlated factors within (fw1 by y1-y3, fw2 by
# y4-y6), one factor between (fb by y1-y6); sem(model, data, cluster = "cluster"). Makes
# demo_twolevel_m2_estimates.csv (parameterEstimates()), demo_twolevel_m2_partable.csv (parTable()) and
# demo_twolevel_m2_fitmeasures.csv (fitMeasures() as measure/value).
# The same model with y4 instead of y1 as fb's marker makes demo_twolevel_m2_y4_estimates.csv and
# demo_twolevel_m2_y4_fitmeasures.csv: from lavaan's default starting values its optimiser then reaches
# another maximum of the likelihood, 65.6 higher (logl -24101.31 against -24166.95), where fb is carried by
# y4-y6 instead of y1-y3. pymlsem's chains find both (tests/workflow/test_model_fit.py).
# lavaan 0.6-14, R 4.2.2 (Debian packages). Run from this folder:  Rscript demo_twolevel_m2.R
suppressMessages(library(lavaan))
d <- read.csv("../data/Demo.twolevel.csv")
model <- "
level: within
  fw1 =~ y1 + y2 + y3
  fw2 =~ y4 + y5 + y6
level: between
  fb =~ y1 + y2 + y3 + y4 + y5 + y6
"
write_fit <- function(fit, prefix, partable = TRUE) {
  stopifnot(lavInspect(fit, "converged"))
  write.csv(parameterEstimates(fit), paste0(prefix, "_estimates.csv"), row.names = FALSE)
  if (partable) write.csv(parTable(fit), paste0(prefix, "_partable.csv"), row.names = FALSE)
  fm <- fitMeasures(fit)
  write.csv(data.frame(measure = names(fm), value = as.numeric(fm)), paste0(prefix, "_fitmeasures.csv"),
            row.names = FALSE)
}
write_fit(sem(model, data = d, cluster = "cluster"), "demo_twolevel_m2")
marker_y4 <- sub("fb =~ y1 + y2 + y3 + y4", "fb =~ y4 + y1 + y2 + y3", model, fixed = TRUE)
write_fit(sem(marker_y4, data = d, cluster = "cluster"), "demo_twolevel_m2_y4", partable = FALSE)
