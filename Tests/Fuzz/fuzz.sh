#!/bin/sh
# Builds the fuzz targets with libFuzzer and runs each for a bounded time (`make fuzz`).
#
#   FUZZ_SECONDS   seconds per target (default 60)
#   FUZZ_TARGETS   which targets (default: csv rules spec dates archive)
#   SWIFT, SWIFTC  the tools (e.g. "flock /tmp/swift-build.lock swift" on a shared machine)
#
# The libraries are built for coverage in their own scratch path (.build-fuzz, release,
# --sanitize=fuzzer); each target is Tests/Fuzz/<target>/*.swift plus
# Tests/QtoolCLITests/FuzzTargets.swift, linked with those objects. Corpora start from
# Fixtures/, ../shared/data when present, small generated inputs and the regressions, and
# grow in .build-fuzz/corpus/<target>. Every crash, timeout or out-of-memory input is copied
# to Tests/Fuzz/Regressions/<target>/, which FuzzRegressionTests replays in `swift test`.
set -u
cd "$(dirname "$0")/../.."
SWIFT=${SWIFT:-swift}
SWIFTC=${SWIFTC:-swiftc}
SECONDS_EACH=${FUZZ_SECONDS:-60}
TARGETS=${FUZZ_TARGETS:-"csv rules spec dates archive"}
SCRATCH=.build-fuzz
BUILD=$SCRATCH/release
FUZZ=Tests/Fuzz

$SWIFT build -c release --scratch-path $SCRATCH --sanitize=fuzzer --target QtoolEngine || exit 1
$SWIFT build -c release --scratch-path $SCRATCH --sanitize=fuzzer --target QtoolArgs || exit 1

# The libraries' objects, and where their modules and the C modules' maps are.
OBJECTS=$(find $BUILD/*.build -name '*.o' | grep -v -E '/(qtool|QtoolBench|QtoolCLI|Qtool[A-Za-z]*Tests|qtoolPackage[A-Za-z]*|QtoolTestSupport)\.build/' | sort)
INCLUDES="-I $BUILD/Modules -I Sources/CArchive -I Sources/CCurl -I Sources/CXGBoost"
for map in $(find $SCRATCH/checkouts -name module.modulemap -path '*Sources*'); do INCLUDES="$INCLUDES -I $(dirname "$map")"; done

max_len() {  # inputs longer than a target needs only slow it down
  case $1 in csv) echo 16384 ;; rules) echo 2048 ;; spec) echo 8192 ;; dates) echo 64 ;; *) echo 65536 ;; esac
}

seed() {  # seed TARGET NAME: stdin becomes a seed input
  cat > "$SCRATCH/corpus/$1/seed-$2"
}

mkdir -p $SCRATCH/corpus $SCRATCH/artifacts
for target in $TARGETS; do
  mkdir -p $SCRATCH/corpus/$target $SCRATCH/artifacts/$target $FUZZ/Regressions/$target
  cp $FUZZ/Regressions/$target/* $SCRATCH/corpus/$target/ 2>/dev/null
done

# Seeds: real files cut to a few kilobytes, and small inputs of every form each target reads.
SHARED=../shared/data
case " $TARGETS " in *" csv "*)
  { printf '\000'; head -c 4096 Fixtures/demo-GOOG-1d.csv; } | seed csv goog
  { printf '\000'; gzip -dc Fixtures/demo-BTCUSDT-1d.csv.gz | head -c 4096; } | seed csv btc
  printf '\000\000"Date","Name","Open","High","Low","Close","Volume"\r\n2024-01-02,"Acme, Inc.","1,234.50",2,0.5,1.5,"1,000"\r\n2024-01-03,"a ""b""",1,2,0.5,1.5,7\r\n' | seed csv quoted
  printf '\001\000'"1735689600000000,93576.0,95151.15,92888.0,94591.79,10373.3,1735775999999999,975444194.1,1516556,5347.7,502914035.6,0\n" | seed csv binance
  printf '\002\000date;open;high;low;close\n2024-01-02;1;2;0.5;1.5\n' | seed csv semicolon
  for file in $SHARED/backtesting_py/GOOG.csv $SHARED/stooq/aapl_us_d.csv; do
    [ -f "$file" ] && { printf '\000'; head -c 4096 "$file"; } | seed csv "$(basename "$file")"
  done
esac
case " $TARGETS " in *" rules "*)
  n=0
  for rule in 'cross_above(sma(close, fast), sma(close, slow))' 'cross_below(ema(close, 12), ema(close, 26)) or rsi(close, 14) > 80' \
    'close > bb_upper(close, 20, 2) and volume > sma(volume, 20) * 1.5' 'not (close[1] < lowest(low, 20)[1]) and macd_hist(close) > 0' \
    '-(high - low) / atr(14) >= zscore(close, 30) * k' 'roc(close, 20) > 0 && returns(close) != log_returns(close, 2)' \
    'abs(close - open) < max(stddev(close, 10), min(high, low)) || wma(close, 5) == close' 'sma(close, 2 * fast) > sma(close, huge)'; do
    n=$((n + 1)); printf '\000%s' "$rule" | seed rules $n
  done
  printf '\001sharpe > 1 and max_drawdown > -0.25 and (trades >= 10 or total_return > 0)' | seed rules assert
esac
case " $TARGETS " in *" spec "*)
  cat > $SCRATCH/corpus/spec/seed-yaml <<'SPEC'
name: sma-cross
description: "Fast/slow SMA crossover"
universe: { symbols: [GOOG], timeframe: 1d }
params: { fast: 10, slow: 30 }
rules:
  entry: cross_above(sma(close, fast), sma(close, slow))
  exit: cross_below(sma(close, fast), sma(close, slow)) or rsi(close, 14) > 80
  short_entry: null
sizing: { fraction: 1.0 }
costs: { commission: 0.001, slippage_bps: 5 }
risk: { stop_loss: 0.05, take_profit: 0.15, trailing_stop: null, max_drawdown_halt: 0.25 }
execution: { fill: next_open, units: fractional, close_at_end: true, capital: 10000 }
signals: { strong: 80, medium: 50, weak: 20 }
SPEC
  cat > $SCRATCH/corpus/spec/seed-json <<'SPEC'
{"name": "momentum", "universe": {"symbols": ["AAPL", "MSFT"], "timeframe": "1d", "source": "yahoo"},
 "params": {"lookback": 20}, "rules": {"entry": "roc(close, lookback) > 0"},
 "portfolio": {"rank": "roc(close, lookback)", "top": 1, "rebalance": "monthly"},
 "sizing": {"units": 10, "max_notional": 5000}, "execution": {"fill": "close", "units": "whole"}}
SPEC
esac
case " $TARGETS " in *" dates "*)
  n=0
  for text in 2024-01-31 2024-01-31T12:30:00Z '2024-01-31 12:30' 2024-01-31T12:30:00.250+02:00 2024-01-31T09:30:00-0500 20240131 \
    1706700000 1706700000123 1706700000123456 1706700000123456789 1706700000.5 1m 4h 1d 1w 1M 90s 15m; do
    n=$((n + 1)); printf '\000%s' "$text" | seed dates $n
  done
  printf '\004%s' 1706700000 | seed dates unit
esac
case " $TARGETS " in *" archive "*)
  cp Fixtures/demo-BTCUSDT-1d.csv.gz $SCRATCH/corpus/archive/seed-btc.csv.gz
  for zip in $SHARED/binance_vision/daily_1h/*.zip; do [ -f "$zip" ] && cp "$zip" $SCRATCH/corpus/archive/seed-$(basename "$zip"); done
  work=$SCRATCH/seedwork; rm -rf $work; mkdir -p $work
  printf 'date,open,high,low,close\n2024-01-02,1,2,0.5,1.5\n2024-01-03,1,2,0.5,1.5\n' > $work/bars.csv
  (cd $work && tar czf bars.tar.gz bars.csv && gzip -nk bars.csv && bzip2 -k bars.csv && xz -k bars.csv && zip -q bars.zip bars.csv) 2>/dev/null
  for file in $work/bars.*; do [ "$file" != "$work/bars.csv" ] && cp "$file" $SCRATCH/corpus/archive/seed-$(basename "$file"); done
esac

status=0
for target in $TARGETS; do
  binary=$SCRATCH/fuzz-$target
  echo "== $target: building"
  $SWIFTC -sanitize=fuzzer -parse-as-library -O $INCLUDES $FUZZ/$target/*.swift Tests/QtoolCLITests/FuzzTargets.swift $OBJECTS \
    -lsqlite3 -lcurl -larchive -lz -lxgboost -o $binary 2>&1 | grep -v -E '^(warning|note)' || true
  [ -x $binary ] || { echo "== $target: build failed"; status=1; continue; }
  dict=""
  [ -f $FUZZ/$target/$target.dict ] && dict="-dict=$FUZZ/$target/$target.dict"
  echo "== $target: fuzzing for ${SECONDS_EACH}s"
  SWIFT_BACKTRACE=enable=no $binary $SCRATCH/corpus/$target -max_total_time=$SECONDS_EACH -timeout=10 -rss_limit_mb=2048 \
    -max_len=$(max_len $target) -print_final_stats=1 -artifact_prefix=$SCRATCH/artifacts/$target/ $dict > $SCRATCH/fuzz-$target.log 2>&1
  result=$?
  runs=$(grep 'stat::number_of_executed_units' $SCRATCH/fuzz-$target.log | awk '{print $2}')
  found=$(ls $SCRATCH/artifacts/$target 2>/dev/null | grep -c -E '^(crash|timeout|oom|leak|slow-unit)-')
  echo "== $target: ${runs:-?} executions, exit $result, $found finds (log: $SCRATCH/fuzz-$target.log)"
  for artifact in $SCRATCH/artifacts/$target/crash-* $SCRATCH/artifacts/$target/timeout-* $SCRATCH/artifacts/$target/oom-*; do
    [ -f "$artifact" ] || continue
    cp "$artifact" $FUZZ/Regressions/$target/
    echo "   saved $FUZZ/Regressions/$target/$(basename "$artifact")"
  done
  [ $result -eq 0 ] || status=1
done
exit $status
