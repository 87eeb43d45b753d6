# lme4's predict() and coef() at ML fits (lme4 1.1-31, R 4.2.2, Debian packages). Makes
# predictions.csv (fitted rows and new rows, conditional and population level, link and response scale)
# sleepstudy_coef.csv and cbpp_ranef.csv (the conditional modes of the binomial model's herd effects).
# Run from this folder:  Rscript predictions.R
suppressMessages(library(lme4))
sleep <- read.csv("../data/sleepstudy.csv")
sleep$Subject <- factor(sleep$Subject)
cbpp <- read.csv("../data/cbpp.csv")
cbpp$period <- factor(cbpp$period); cbpp$herd <- factor(cbpp$herd)
fit <- lmer(Reaction ~ Days + (Days | Subject), sleep, REML = FALSE)
new <- data.frame(Days = c(0, 4.5, 12, 3), Subject = c("308", "309", "372", "999"))
gfit <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, family = binomial)
gnew <- data.frame(period = c("1", "4", "2"), herd = c("1", "15", "7"))
out <- rbind(
  data.frame(model = "sleepstudy", rows = "fitted", re = "conditional", type = "response",
             row = seq_len(nrow(sleep)), value = predict(fit)),
  data.frame(model = "sleepstudy", rows = "new", re = "conditional", type = "response",
             row = 1:4, value = predict(fit, new, allow.new.levels = TRUE)),
  data.frame(model = "sleepstudy", rows = "new", re = "population", type = "response",
             row = 1:4, value = predict(fit, new, re.form = NA)),
  data.frame(model = "cbpp", rows = "fitted", re = "conditional", type = "response",
             row = seq_len(nrow(cbpp)), value = predict(gfit, type = "response")),
  data.frame(model = "cbpp", rows = "new", re = "conditional", type = "link",
             row = 1:3, value = predict(gfit, gnew)),
  data.frame(model = "cbpp", rows = "new", re = "population", type = "response",
             row = 1:3, value = predict(gfit, gnew, re.form = NA, type = "response"))
)
write.csv(out, "predictions.csv", row.names = FALSE)
co <- coef(fit)$Subject
write.csv(data.frame(Subject = rownames(co), co, check.names = FALSE), "sleepstudy_coef.csv", row.names = FALSE)
re <- ranef(gfit)$herd
write.csv(data.frame(herd = rownames(re), value = re[, 1]), "cbpp_ranef.csv", row.names = FALSE)
