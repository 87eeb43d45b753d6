# lavaan's defaults (the parameter table only: which parameters exist, which are free, fixed values, labels and
# equality constraints; no estimates, no start values) for two two-level models of the book: model 10.4, three
# factors at both levels with the loadings equal across levels by labels (sem()), and model 10.6, a two-level
# linear growth model over six occasions (growth(); residual variances equal over time within, zero between).
# The book's data are not shipped, so the models are set up with do.fit = FALSE on a small simulated data set
# that only carries the variable names (V1-V12, cluster; set.seed(1), 50 clusters of 6, standard normal values
# plus a normal cluster effect so that every variable varies at both levels): lavaan's parameter table does not
# depend on the values beyond that. Makes book_m104_partable_structure.csv and
# book_m106_growth_partable_structure.csv (parTable() columns id to plabel). lavaan 0.6-14, R 4.2.2 (Debian
# packages). Run from this folder:  Rscript book_structures.R
suppressMessages(library(lavaan))
set.seed(1)
n_clusters <- 50
cluster <- rep(seq_len(n_clusters), each = 6)
d <- as.data.frame(matrix(rnorm(length(cluster) * 12), ncol = 12) +
                   matrix(rnorm(n_clusters * 12), ncol = 12)[cluster, ])
names(d) <- paste0("V", 1:12)
d$cluster <- cluster
columns <- c("id", "lhs", "op", "rhs", "user", "block", "level", "free", "ustart", "exo", "label", "plabel")
m104 <- "
level: 1
  f1w =~ V1 + a*V2 + b*V3 + c*V4
  f2w =~ V5 + d*V6 + e*V7 + g*V8
  f3w =~ V9 + h*V10 + i*V11 + j*V12
level: 2
  f1b =~ V1 + a*V2 + b*V3 + c*V4
  f2b =~ V5 + d*V6 + e*V7 + g*V8
  f3b =~ V9 + h*V10 + i*V11 + j*V12
"
fit104 <- sem(m104, data = d, cluster = "cluster", do.fit = FALSE)
write.csv(parTable(fit104)[, columns], "book_m104_partable_structure.csv", row.names = FALSE)
m106 <- "
level: 1
  iw =~ 1*V1 + 1*V2 + 1*V3 + 1*V4 + 1*V5 + 1*V6
  sw =~ 0*V1 + 1*V2 + 2*V3 + 3*V4 + 4*V5 + 5*V6
  V1 ~~ a*V1
  V2 ~~ a*V2
  V3 ~~ a*V3
  V4 ~~ a*V4
  V5 ~~ a*V5
  V6 ~~ a*V6
level: 2
  ib =~ 1*V1 + 1*V2 + 1*V3 + 1*V4 + 1*V5 + 1*V6
  sb =~ 0*V1 + 1*V2 + 2*V3 + 3*V4 + 4*V5 + 5*V6
  V1 ~~ 0*V1
  V2 ~~ 0*V2
  V3 ~~ 0*V3
  V4 ~~ 0*V4
  V5 ~~ 0*V5
  V6 ~~ 0*V6
"
fit106 <- growth(m106, data = d[, c(paste0("V", 1:6), "cluster")], cluster = "cluster", do.fit = FALSE)
write.csv(parTable(fit106)[, columns], "book_m106_growth_partable_structure.csv", row.names = FALSE)
