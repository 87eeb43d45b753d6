# Fit lavaan models as a user would, for benchmarks/bench_engine.py (the peer's whole process and fit times).
# Usage: Rscript benchmarks/lavaan_fit.R JOBS.tsv
# JOBS.tsv: one job per line, tab-separated: name, function (sem/cfa/growth), data set (a file name of
# tests/data/reference/data without .csv), cluster column ("-" for none), model file.
# Prints one line per job: name<TAB>seconds of the fit and summary<TAB>converged.
suppressPackageStartupMessages(library(lavaan))
args <- commandArgs(trailingOnly = TRUE)
jobs <- read.delim(args[1], header = FALSE, stringsAsFactors = FALSE)
for (i in seq_len(nrow(jobs))) {
  job <- jobs[i, ]
  data <- read.csv(file.path("tests", "data", "reference", "data", paste0(job$V3, ".csv")))
  model <- paste(readLines(job$V5), collapse = "\n")
  fitter <- get(job$V2)
  start <- proc.time()[["elapsed"]]
  fit <- if (job$V4 == "-") fitter(model, data = data) else fitter(model, data = data, cluster = job$V4)
  invisible(capture.output(summary(fit)))
  seconds <- proc.time()[["elapsed"]] - start
  cat(job$V1, "\t", seconds, "\t", lavInspect(fit, "converged"), "\n", sep = "")
}
