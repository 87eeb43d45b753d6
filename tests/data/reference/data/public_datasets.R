# The public data sets of this folder, written from the R packages that ship them (lavaan 0.6-14, lme4 1.1-31,
# R 4.2.2, Debian packages): Demo.twolevel.csv, HolzingerSwineford1939.csv, PoliticalDemocracy.csv (lavaan),
# sleepstudy.csv, cbpp.csv, grouseticks.csv (lme4). reading_public.csv is simulated (see ORIGIN.md) and
# wine.csv is written by ../ordinal/wine_clmm.R. Run from this folder:  Rscript public_datasets.R
suppressMessages({library(lavaan); library(lme4)})
write.csv(Demo.twolevel, "Demo.twolevel.csv", row.names = FALSE)
write.csv(HolzingerSwineford1939, "HolzingerSwineford1939.csv", row.names = FALSE)
write.csv(PoliticalDemocracy, "PoliticalDemocracy.csv", row.names = FALSE)
write.csv(sleepstudy, "sleepstudy.csv", row.names = FALSE)
write.csv(cbpp, "cbpp.csv", row.names = FALSE)
write.csv(grouseticks, "grouseticks.csv", row.names = FALSE)
