"""Writes Fixtures/reference/xgboost-goog-up.json: the issue's goog-up model trained by PyPI's
xgboost 1.7.4 (and the linear models fitted by scikit-learn) on the bundled GOOG bars — the
reference QtoolModelsTests and QtoolEngineTests compare qtool against.

The features are computed here with the same arithmetic, in the same order, as qtool's
Indicators and rules evaluator (so the float32 matrices XGBoost sees are identical); the test
also compares them. Run: pip install 'xgboost==1.7.4' scikit-learn numpy;
python3 Tests/Reference/make_xgboost_reference.py
"""
import base64, csv, datetime, json, math, os
import numpy as np
import sklearn
import xgboost as xgb
from sklearn.linear_model import LogisticRegression, Ridge

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
rows = list(csv.reader(open(os.path.join(root, "Fixtures", "demo-GOOG-1d.csv"))))[1:]
dates = [r[0][:10] for r in rows]
high = [float(r[2]) for r in rows]; low = [float(r[3]) for r in rows]; close = [float(r[4]) for r in rows]
n = len(close); nan = float("nan")

def sma(x, p):
    out = [nan] * len(x); s = 0.0
    for i in range(len(x)):
        s += x[i]
        if i >= p: s -= x[i - p]
        if i >= p - 1: out[i] = s / p
    return out

def rsi(x, p):
    out = [nan] * len(x); gain = 0.0; loss = 0.0
    for i in range(1, p + 1):
        c = x[i] - x[i - 1]
        if c > 0: gain += c
        else: loss -= c
    gain /= p; loss /= p
    value = lambda: 0.0 if gain + loss == 0 else 100 * gain / (gain + loss)
    out[p] = value()
    for i in range(p + 1, len(x)):
        c = x[i] - x[i - 1]
        gain = (gain * (p - 1) + max(c, 0.0)) / p
        loss = (loss * (p - 1) + max(-c, 0.0)) / p
        out[i] = value()
    return out

def atr(h, l, c, p):
    out = [nan] * len(c); tr = [nan] * len(c)
    for i in range(1, len(c)):
        tr[i] = max(h[i] - l[i], abs(h[i] - c[i - 1]), abs(l[i] - c[i - 1]))
    v = 0.0
    for i in range(1, p + 1): v += tr[i]
    v /= p; out[p] = v
    for i in range(p + 1, len(c)):
        v = (v * (p - 1) + tr[i]) / p; out[i] = v
    return out

roc = lambda x, p: [(x[i] / x[i - p] - 1) * 100 if i >= p and x[i - p] != 0 else nan for i in range(len(x))]
returns = lambda x, p: [x[i] / x[i - p] - 1 if i >= p and x[i - p] != 0 else nan for i in range(len(x))]
h = 5
s50 = sma(close, 50); a14 = atr(high, low, close, 14)
features = {
    "rsi14": rsi(close, 14), "roc5": roc(close, 5), "trend": [close[i] / s50[i] - 1 for i in range(n)],
    "vol": [a14[i] / close[i] for i in range(n)], "ret1": returns(close, 1),
}
names = list(features)
forward = [close[i + h] / close[i] - 1 if i + h < n and close[i] != 0 else nan for i in range(n)]
lookback = 49  # sma(close, 50)

def block(d):
    if d <= "2009-12-31": return 0
    if "2010-01-01" <= d <= "2011-06-30": return 1
    return 2

blocks = [block(d) for d in dates]
def next_later(i):
    for j in range(i + 1, n):
        if blocks[j] > blocks[i]: return j
    return None

picked = {0: [], 1: [], 2: [], "test_features": []}
purged = 0
for i in range(n):
    if i < lookback or any(math.isnan(features[k][i]) or math.isinf(features[k][i]) for k in names): continue
    labelled = i + h < n and not math.isnan(forward[i])
    if blocks[i] == 2:
        picked["test_features"].append(i)
        if labelled: picked[2].append(i)
        continue
    if not labelled: continue
    j = next_later(i)
    if j is not None and j - i <= h:
        purged += 1; continue
    picked[blocks[i]].append(i)

def matrix(idx):
    return np.array([[features[k][i] for k in names] for i in idx], dtype=np.float32)
binary = lambda idx: np.array([1.0 if forward[i] > 0 else 0.0 for i in idx], dtype=np.float32)

dtrain = xgb.DMatrix(matrix(picked[0]), label=binary(picked[0]), missing=np.nan)
dvalid = xgb.DMatrix(matrix(picked[1]), label=binary(picked[1]), missing=np.nan)
dtest = xgb.DMatrix(matrix(picked["test_features"]), missing=np.nan)
params = {"objective": "binary:logistic", "eval_metric": ["logloss", "error"], "max_depth": 3, "eta": 0.1, "seed": 0,
          "nthread": 1, "tree_method": "hist"}
evals = {}
bst = xgb.train(params, dtrain, num_boost_round=50, evals=[(dtrain, "train"), (dvalid, "valid")], evals_result=evals, verbose_eval=False)
valid_loss = evals["valid"]["logloss"]
best = min(range(len(valid_loss)), key=lambda k: (valid_loss[k], k))
pred = bst.predict(dtest, iteration_range=(0, best + 1))
pred_all = bst.predict(dtest)

# A model saved by Python: 10 rounds, UBJSON, with its predictions on the test rows.
small = xgb.train(params, dtrain, num_boost_round=10)
small_raw = bytes(small.save_raw("ubj"))
small_pred = small.predict(dtest)

# Linear models on features standardised with the train rows' mean and population std.
X = np.array([[features[k][i] for k in names] for i in picked[0]], dtype=np.float64)
mean = X.mean(axis=0); scale = X.std(axis=0); scale[scale == 0] = 1
Z = (X - mean) / scale
logistic = LogisticRegression(C=1.0, solver="newton-cholesky", tol=1e-14, max_iter=1000).fit(Z, [1.0 if forward[i] > 0 else 0.0 for i in picked[0]])
ridge = Ridge(alpha=1.0).fit(Z, [forward[i] for i in picked[0]])

r = lambda v: repr(float(v))
out = {
    "xgboost_version": xgb.__version__, "sklearn_version": sklearn.__version__,
    "spec": "goog-up over Fixtures/demo-GOOG-1d.csv: rsi14, roc5, trend, vol, ret1; forward_return(close, 5) > 0; gbt rounds 50, max_depth 3, eta 0.1, seed 0, threads 1; split ..2009-12-31 / 2010-01-01..2011-06-30 / 2011-07-01.., purge 5",
    "features": names,
    "rows": {"train": len(picked[0]), "valid": len(picked[1]), "test": len(picked[2]), "test_features": len(picked["test_features"]), "purged": purged},
    "train_first_last": [dates[picked[0][0]], dates[picked[0][-1]]], "valid_first_last": [dates[picked[1][0]], dates[picked[1][-1]]],
    "feature_rows": {dates[i]: [r(features[k][i]) for k in names] for i in (picked[0][:3] + picked[2][-3:])},
    "evals": {k: {m: [r(v) for v in vals] for m, vals in evals[k].items()} for k in evals},
    "best_epoch": best,
    "test_dates": [dates[i] for i in picked["test_features"]],
    "test_predictions": [r(v) for v in pred],
    "test_predictions_all_rounds": [r(v) for v in pred_all],
    "python_model_ubj": base64.b64encode(small_raw).decode(), "python_model_rounds": 10,
    "python_model_predictions": [r(v) for v in small_pred],
    "logistic": {"lambda": 1.0, "intercept": r(logistic.intercept_[0]), "coefficients": [r(v) for v in logistic.coef_[0]],
                 "mean": [r(v) for v in mean], "scale": [r(v) for v in scale]},
    "ridge": {"alpha": 1.0, "intercept": r(ridge.intercept_), "coefficients": [r(v) for v in ridge.coef_]},
}
os.makedirs(os.path.join(root, "Fixtures", "reference"), exist_ok=True)
json.dump(out, open(os.path.join(root, "Fixtures", "reference", "xgboost-goog-up.json"), "w"), separators=(",", ":"))
print("wrote xgboost-goog-up.json:", out["rows"], "best epoch", best, "with xgboost", xgb.__version__, "scikit-learn", sklearn.__version__)
