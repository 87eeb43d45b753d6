# Fit lme4 models as a user would, for benchmarks/bench_mixed_engine.py (the peer's whole process and fit).
# Usage: Rscript benchmarks/lme4_fit.R JOBS.tsv
# JOBS.tsv: one job per line, tab-separated: name, formula, data set (a file name of
# tests/data/reference/data without .csv), family ("gaussian": lmer by maximum likelihood; "binomial",
# "poisson": glmer, Laplace; "negbinomial": glmer.nb; "student": lmer's Gaussian fit, lme4 has no t family;
# "ordinal": the ordinal package's clmm, Laplace, the response as an ordered factor).
# Prints one line per job: name<TAB>seconds of the fit and summary<TAB>fixed effects (comma-separated).
suppressPackageStartupMessages(library(lme4))
args <- commandArgs(trailingOnly = TRUE)
jobs <- read.delim(args[1], header = FALSE, stringsAsFactors = FALSE, quote = "")
for (i in seq_len(nrow(jobs))) {
  job <- jobs[i, ]
  data <- read.csv(file.path("tests", "data", "reference", "data", paste0(job$V3, ".csv")))
  start <- proc.time()[["elapsed"]]
  if (job$V4 == "ordinal") {
    suppressPackageStartupMessages(library(ordinal))
    response <- all.vars(as.formula(job$V2))[1]
    data[[response]] <- factor(data[[response]], ordered = TRUE)
  }
  fit <- if (job$V4 %in% c("gaussian", "student")) {  # lme4 has no Student-t family: the Gaussian fit
    lmer(as.formula(job$V2), data = data, REML = FALSE)
  } else if (job$V4 == "ordinal") {
    clmm(as.formula(job$V2), data = data)
  } else if (job$V4 == "negbinomial") {
    glmer.nb(as.formula(job$V2), data = data)
  } else {
    glmer(as.formula(job$V2), data = data, family = job$V4)
  }
  invisible(capture.output(summary(fit)))
  seconds <- proc.time()[["elapsed"]] - start
  cat(job$V1, "\t", seconds, "\t", paste(signif(if (job$V4 == "ordinal") fit$beta else fixef(fit), 6), collapse = ","), "\n", sep = "")
}
