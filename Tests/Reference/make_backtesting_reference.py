"""Writes Fixtures/reference/backtesting-py-goog-smacross.json: backtesting.py's SmaCross
(10/20, long-short reversal, commission 0.002, cash 10,000, next-open fills, whole units) on
its own GOOG data. QtoolCoreTests/BacktesterTests must reproduce trades, final equity, the
equity curve and max drawdown exactly.

Run with backtesting installed (pip install 'backtesting==0.6.*'):
  python3 Tests/Reference/make_backtesting_reference.py
"""
import json, os, warnings

import numpy as np
import backtesting
from backtesting import Backtest, Strategy
from backtesting.lib import crossover
from backtesting.test import GOOG, SMA

warnings.simplefilter("ignore")
root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class SmaCross(Strategy):
    n1, n2 = 10, 20

    def init(self):
        self.sma1 = self.I(SMA, self.data.Close, self.n1)
        self.sma2 = self.I(SMA, self.data.Close, self.n2)

    def next(self):
        if crossover(self.sma1, self.sma2):
            self.position.close()
            self.buy()
        elif crossover(self.sma2, self.sma1):
            self.position.close()
            self.sell()


stats = Backtest(GOOG, SmaCross, cash=10_000, commission=.002).run()
# The broker's own objects and arrays: stats' percentages are rounded through x100, and its
# trades DataFrame does not always carry Trade.pl bit for bit.
equity = stats["_equity_curve"]["Equity"].values
max_drawdown = -float(np.nan_to_num((1 - equity / np.maximum.accumulate(equity)).max()))
# Numbers as repr() strings: Foundation's JSON parser on Linux is not correctly rounded, and
# the test compares bits.
r = repr
out = {
    "backtesting_version": backtesting.__version__,
    "final_equity": r(float(equity[-1])),
    "max_drawdown": r(max_drawdown),
    "equity": [r(float(v)) for v in equity],
    "trades": [
        {"size": int(t.size), "entry_bar": int(t.entry_bar), "exit_bar": int(t.exit_bar), "entry_price": r(float(t.entry_price)),
         "exit_price": r(float(t.exit_price)), "pnl": r(float(t.pl))}
        for t in stats["_strategy"].closed_trades
    ],
}
json.dump(out, open(os.path.join(root, "Fixtures", "reference", "backtesting-py-goog-smacross.json"), "w"), separators=(",", ":"))
print("wrote backtesting-py-goog-smacross.json:", len(out["trades"]), "trades, final equity", out["final_equity"], "backtesting", backtesting.__version__)
