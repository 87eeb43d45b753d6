# The Rasch model of lme4's VerbAgg data (316 persons x 24 binary items) by glmer, the peer of
# pymlsem.irt(discrimination="common") in bench_irt.py --rasch: adaptive Gauss-Hermite quadrature with the
# nAGQ given (25, as tests/data/reference/lme4/verbagg_rasch.R; 1 is the Laplace approximation).
#   Rscript benchmarks/glmer_rasch.R 25
suppressMessages(library(lme4))
nagq <- as.integer(commandArgs(trailingOnly = TRUE)[1])
data(VerbAgg, package = "lme4")
VerbAgg$y <- as.integer(VerbAgg$r2 == "Y")
start <- Sys.time()
fit <- glmer(y ~ 0 + item + (1 | id), VerbAgg, family = binomial, nAGQ = nagq,
             control = glmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5)))
cat(sprintf("fit %.1f logLik %.4f sd %.4f\n", as.numeric(difftime(Sys.time(), start, units = "secs")),
            as.numeric(logLik(fit)), attr(VarCorr(fit)$id, "stddev")))
