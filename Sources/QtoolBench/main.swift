import Foundation
import QtoolEngine

// Prints qtool's performance figures next to baselines measured in the same run.
// Usage: QtoolBench [startup|store|data|backtest|download|cancel|train|live|serve|cluster|engine|all]   (make bench runs all)
let which = CommandLine.arguments.dropFirst().first ?? "all"
ProcessTuning.keepFreedMemory()  // as qtool itself does
let bench = Bench()
print("qtool benchmarks — \(ProcessInfo.processInfo.processorCount) cores, \(Bench.today)")
if which == "all" || which == "startup" { try bench.startup() }
if which == "all" || which == "store" { try bench.store() }
if which == "all" || which == "data" { try bench.data() }
if which == "all" || which == "backtest" { try bench.backtest() }
if which == "all" || which == "download" { try bench.download() }
if which == "all" || which == "cancel" { try bench.cancellation() }
if which == "all" || which == "train" { try bench.train() }
if which == "all" || which == "live" { try bench.live() }
if which == "all" || which == "serve" { try bench.serve() }
if which == "all" || which == "cluster" { try bench.cluster() }
if which == "engine" { try bench.engineOnly() }
try? FileManager.default.removeItem(at: bench.scratch)
