"""Writes Fixtures/reference/talib-goog.json: TA-Lib's indicators on backtesting.py's GOOG
closes, the reference QtoolCoreTests/IndicatorsTests compares against (1e-9 relative).

Run with TA-Lib installed (pip install ta-lib): python3 Tests/Reference/make_talib_reference.py
"""
import csv, json, math, os, sys
import numpy as np
import talib

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
rows = list(csv.reader(open(os.path.join(root, "..", "shared", "data", "backtesting_py", "GOOG.csv"))))[1:]
high = np.array([float(r[2]) for r in rows]); low = np.array([float(r[3]) for r in rows]); close = np.array([float(r[4]) for r in rows])

def clean(a):
    return [None if math.isnan(v) else float(v) for v in a]

macd, signal, hist = talib.MACD(close, 12, 26, 9)
upper, middle, lower = talib.BBANDS(close, 20, 2, 2, 0)
out = {
    "talib_version": talib.__version__,
    "source": "backtesting_py/GOOG.csv close (high, low for ATR)",
    "sma_20": clean(talib.SMA(close, 20)), "ema_20": clean(talib.EMA(close, 20)), "wma_10": clean(talib.WMA(close, 10)),
    "rsi_14": clean(talib.RSI(close, 14)), "macd": clean(macd), "macd_signal": clean(signal), "macd_hist": clean(hist),
    "bb_upper_20": clean(upper), "bb_mid_20": clean(middle), "bb_lower_20": clean(lower),
    "atr_14": clean(talib.ATR(high, low, close, 14)), "stddev_20": clean(talib.STDDEV(close, 20, 1)),
    "roc_10": clean(talib.ROC(close, 10)), "max_20": clean(talib.MAX(close, 20)), "min_20": clean(talib.MIN(close, 20)),
}
json.dump(out, open(os.path.join(root, "Fixtures", "reference", "talib-goog.json"), "w"), separators=(",", ":"))
print("wrote talib-goog.json with TA-Lib", talib.__version__)
