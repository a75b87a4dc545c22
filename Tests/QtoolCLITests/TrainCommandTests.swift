import Foundation
import QtoolCore
import Testing

/// `qtool train` through the built binary: the template, a training job, the library
/// commands, model() in backtests (out of sample only), and the errors' exit codes.
@Suite struct TrainCommandTests {
  func json(_ text: String) throws -> [String: Any] { try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any] }

  func prepared() throws -> QtoolProcess {
    let qtool = try QtoolProcess()
    let goog = QtoolProcess.packageRoot.appendingPathComponent("Fixtures/demo-GOOG-1d.csv").path
    #expect(try qtool.run(["data", "import", goog, "-s", "GOOG", "-t", "1d"]).status == 0)
    return qtool
  }

  static let spec = """
    name: goog-up
    dataset: GOOG-1d
    params: { h: 5 }
    features:
      rsi14: rsi(close, 14)
      trend: close / sma(close, 50) - 1
      ret1: returns(close, 1)
    label: { expr: "forward_return(close, h) > 0", kind: binary }
    model: { family: gbt, rounds: 20, early_stopping: 5, max_depth: 3, eta: 0.1 }
    split: { train: "..2009-12-31", valid: "2010-01-01..2011-06-30", test: "2011-07-01..", purge: h }
    """

  func write(_ text: String, _ name: String, in qtool: QtoolProcess) throws -> String {
    let path = qtool.home.appendingPathComponent(name).path
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
  }

  @Test func templateTrainsAndTheLibraryShowsIt() throws {
    let qtool = try prepared()
    defer { qtool.cleanUp() }
    for template in ["gbt-classifier", "gbt-regressor", "logistic", "ridge"] {
      let path = qtool.home.appendingPathComponent("\(template).yaml").path
      let created = try qtool.run(["train", "new", "m-\(template)", "--template", template, "--dataset", "GOOG-1d", "-o", path])
      #expect(created.status == 0, "\(created.stderr)")
      let run = try qtool.run(["train", "run", "m-\(template)", "--json"])
      #expect(run.status == 0, "\(template): \(run.stderr)")
      let report = try json(run.stdout)
      #expect(report["version"] as? Int == 1)
      #expect((report["rows"] as! [String: Int])["train"]! > 500)
    }
    let list = try JSONSerialization.jsonObject(with: Data(try qtool.run(["train", "list", "--json"]).stdout.utf8)) as! [[String: Any]]
    #expect(list.count == 4)
    let metrics = try json(try qtool.run(["train", "metrics", "m-logistic", "--json"]).stdout)
    #expect(!(metrics["epochs"] as! [Any]).isEmpty)
    // The model is the epoch of the lowest val_loss, as the job's progress said and the help
    // says (a logistic model kept its last Newton step).
    let epochs = (metrics["epochs"] as! [[String: Any]]).filter { $0["fold"] as? Int == 0 }
    func validLoss(_ epoch: [String: Any]) -> Double { (epoch["figures"] as? [String: Any])?["val_loss"] as? Double ?? .infinity }
    let lowest = epochs.min { validLoss($0) < validLoss($1) }
    #expect((metrics["best_epochs"] as? [Int])?.first == lowest?["epoch"] as? Int, "\(metrics["best_epochs"] ?? "")")
    let csv = try qtool.run(["train", "metrics", "m-gbt-classifier", "--csv"])
    #expect(csv.stdout.hasPrefix("fold,epoch,loss,accuracy,mae,val_loss,val_accuracy,val_mae\n"))
    let show = try qtool.run(["train", "show", "m-ridge@1"])
    #expect(show.status == 0 && show.stdout.contains("m-ridge v1 (ready)"), "\(show.stderr)")
    let predict = try qtool.run(["train", "predict", "m-gbt-classifier", "--dataset", "GOOG-1d", "--from", "2013-01-01", "--csv"])
    #expect(predict.status == 0, "\(predict.stderr)")
    #expect(predict.stdout.split(separator: "\n").count > 30)
    #expect(try qtool.run(["train", "delete", "m-ridge"]).status == 0)
    #expect(try qtool.run(["train", "show", "m-ridge"]).status == 66)
  }

  @Test func modelInABacktestIsOutOfSampleOnly() throws {
    let qtool = try prepared()
    defer { qtool.cleanUp() }
    let spec = try write(Self.spec, "goog-up.yaml", in: qtool)
    let trained = try qtool.run(["train", "run", spec])
    #expect(trained.status == 0, "\(trained.stderr)")
    #expect(trained.stdout.contains("trained goog-up v1"))
    let strategy = try write(
      """
      name: goog-model
      universe: { symbols: [GOOG], timeframe: 1d }
      rules:
        entry: model("goog-up") > 0.55
        exit: model("goog-up") < 0.45
      """, "goog-model.yaml", in: qtool)
    let inSample = try qtool.run(["backtest", "run", strategy, "--json"])
    #expect(inSample.status == 65, "\(inSample.stderr)")
    #expect(try errorObject(inSample.stderr)["code"] as? String == "model_in_sample")
    #expect(inSample.stderr.contains("--allow-in-sample"))
    let outOfSample = try qtool.run(["backtest", "run", strategy, "--from", "2011-07-01", "--json"])
    #expect(outOfSample.status == 0, "\(outOfSample.stderr)")
    let warmup = try json(outOfSample.stdout)["warmup"] as! [String: Any]
    #expect((warmup["bars"] as! Int) >= 50, "the model's features warm up like indicators")
    #expect(try qtool.run(["backtest", "run", strategy, "--allow-in-sample"]).status == 0)
    let check = try qtool.run(["backtest", "check", strategy, "--from", "2011-07-01", "--json"])
    #expect(check.status == 0, "\(check.stdout) \(check.stderr)")
    #expect(try json(check.stdout)["clean"] as? Bool == true)
    let unknown = try write(
      "name: x\nuniverse: { symbols: [GOOG], timeframe: 1d }\nrules: { entry: 'model(\"goog-upp\") > 0.5' }\n", "x.yaml", in: qtool)
    let missing = try qtool.run(["backtest", "run", unknown, "--json"])
    #expect(missing.status == 66, "\(missing.stderr)")
    #expect(missing.stderr.contains("did you mean 'goog-up'"))
  }

  /// `strategy run` of a model() strategy: refused in sample (65, as `backtest run`), and out of
  /// sample a replay holds the trades and equity of `backtest run` over the same bars, each
  /// signal naming the model version its decision read.
  @Test func modelStrategyRunsLiveLikeItsBacktest() throws {
    let qtool = try prepared()
    defer { qtool.cleanUp() }
    #expect(try qtool.run(["train", "run", try write(Self.spec, "goog-up.yaml", in: qtool)]).status == 0)
    let strategy = try write(
      """
      name: goog-model
      universe: { symbols: [GOOG], timeframe: 1d }
      rules:
        entry: model("goog-up") > 0.51
        exit: model("goog-up") < 0.505
      execution: { close_at_end: false }
      """, "goog-model.yaml", in: qtool)
    let inSample = try qtool.run(["strategy", "run", strategy, "--feed", "replay", "--speed", "max", "--json"])
    #expect(inSample.status == 65, "\(inSample.stderr)")
    let error = try errorObject(inSample.stderr)
    #expect(error["code"] as? String == "model_in_sample")
    #expect((error["hint"] as? String)?.contains("--from") == true && inSample.stderr.contains("--allow-in-sample") == false)
    #expect(try qtool.run(["signals", "list", "--json"]).stdout.contains("goog-model") == false, "nothing traded")

    let run = try qtool.run(["strategy", "run", strategy, "--feed", "replay", "--speed", "max", "--from", "2011-07-01", "--json"])
    #expect(run.status == 0, "\(run.stderr)")
    let backtest = try qtool.run(["backtest", "run", "goog-model", "--from", "2011-07-01", "--json"])
    #expect(backtest.status == 0, "\(backtest.stderr)")
    let report = try json(backtest.stdout)
    let shown = try json(try qtool.run(["strategy", "status", "goog-model", "--trades", "--json"]).stdout)
    let account = try #require(shown["account"] as? [String: Any])
    #expect(account["equity"] as? Double == (report["metrics"] as? [String: Any])?["final_equity"] as? Double)
    let expected = try #require(report["trades"] as? [[String: Any]])
    let trades = try #require(shown["trades"] as? [[String: Any]])
    #expect(expected.count >= 10 && trades.count == expected.count, "\(trades.count) paper trades, \(expected.count) backtest trades")
    for (paper, backtest) in zip(trades, expected) {
      for key in ["side", "size", "entry_time", "entry_price", "exit_time", "exit_price", "pnl"] {
        #expect("\(paper[key] ?? "-")" == "\(backtest[key] ?? "-")", "\(key) of the trade entered at \(backtest["entry_time"] ?? "?")")
      }
    }
    let listed = try json(try qtool.run(["signals", "list", "--strategy", "goog-model", "--size", "1000", "--json"]).stdout)
    let signals = try #require(listed["items"] as? [[String: Any]])
    #expect(signals.count >= expected.count * 2)
    for signal in signals {
      let models = signal["models"] as? [[String: Any]]
      #expect(models?.count == 1 && models?.first?["name"] as? String == "goog-up" && models?.first?["version"] as? Int == 1, "\(signal)")
    }
    let tail = try qtool.run(["signals", "tail", "-n", "1", "--json"])
    #expect(try jsonObject(tail.stdout.trimmingCharacters(in: .whitespacesAndNewlines))["models"] as? [[String: Any]] != nil)
    // The indicators a signal reports include the model's prediction at its bar.
    #expect((signals.last?["indicators"] as? [String: Any])?.keys.contains { $0.hasPrefix("model(") } == true)
  }

  @Test func exportImportRoundTrips() throws {
    let qtool = try prepared()
    defer { qtool.cleanUp() }
    let spec = try write(Self.spec, "goog-up.yaml", in: qtool)
    #expect(try qtool.run(["train", "run", spec]).status == 0)
    let file = qtool.home.appendingPathComponent("goog-up.qmodel.json").path
    #expect(try qtool.run(["train", "export", "goog-up", "-o", file]).status == 0)
    let imported = try qtool.run(["train", "import", file, "--name", "goog-copy", "--json"])
    #expect(imported.status == 0, "\(imported.stderr)")
    let a = try qtool.run(["train", "predict", "goog-up", "--dataset", "GOOG-1d", "--json"]).stdout
    let b = try qtool.run(["train", "predict", "goog-copy", "--dataset", "GOOG-1d", "--json"]).stdout
    #expect(a.replacingOccurrences(of: "goog-up", with: "goog-copy") == b)
    #expect(try qtool.run(["train", "import", spec]).status == 65)
  }

  @Test func badInputExitsWithItsCode() throws {
    let qtool = try prepared()
    defer { qtool.cleanUp() }
    let parse = try qtool.run([
      "train", "run", try write(Self.spec.replacingOccurrences(of: "rsi(close, 14)", with: "rsi(close, 14"), "a.yaml", in: qtool),
    ])
    #expect(parse.status == 65, "a spec error, as a strategy spec's: \(parse.stderr)")
    #expect(parse.stderr.contains("^"))
    let noLookahead = try qtool.run([
      "train", "run",
      try write(Self.spec.replacingOccurrences(of: "forward_return(close, h) > 0", with: "close > sma(close, 5)"), "b.yaml", in: qtool),
    ])
    #expect(noLookahead.status == 65, "\(noLookahead.stderr)")
    let peeking = try qtool.run([
      "train", "run", try write(Self.spec.replacingOccurrences(of: "returns(close, 1)", with: "future(close, 1)"), "c.yaml", in: qtool),
    ])
    #expect(peeking.status == 65 && peeking.stderr.contains("look-ahead") && peeking.stderr.contains("^"), "\(peeking.stderr)")
    let short = try qtool.run([
      "train", "run", try write(Self.spec.replacingOccurrences(of: "..2009-12-31", with: "..2004-10-15"), "d.yaml", in: qtool), "--json",
    ])
    #expect(short.status == 65, "\(short.stderr)")
    #expect(try errorObject(short.stderr)["code"] as? String == "training_data_too_short")
    #expect(try qtool.run(["train", "run", "nope"]).status == 66)
    let strategy = try write(
      "name: s\nuniverse: { symbols: [GOOG], timeframe: 1d }\nrules: { entry: 'future(close, 1) > close' }\n", "s.yaml", in: qtool)
    let lookahead = try qtool.run(["backtest", "run", strategy])
    #expect(lookahead.status == 65 && lookahead.stderr.contains("look-ahead"), "\(lookahead.stderr)")
  }

  @Test func ctrlCDuringTrainingLeavesNoVersion() throws {
    let qtool = try prepared()
    defer { qtool.cleanUp() }
    let spec = try write(Self.spec, "goog-up.yaml", in: qtool)
    let running = try BackgroundQtool(qtool, ["train", "run", spec], environment: ["QTOOL_TEST_PAUSE": "train.epoch:2"])
    #expect(running.waitForStderr("qtool-test: paused at train.epoch:2"), "\(running.stderr)")
    let metrics = try json(try qtool.run(["train", "metrics", "goog-up", "--json"]).stdout)
    #expect((metrics["epochs"] as! [Any]).count == 2, "epochs are stored as they come")
    #expect(metrics["status"] as? String == "training")
    running.signal(SIGINT)
    #expect(running.wait() == 130)
    let list = try JSONSerialization.jsonObject(with: Data(try qtool.run(["train", "list", "--json"]).stdout.utf8)) as! [[String: Any]]
    #expect(list.allSatisfy { $0["latest"] == nil || $0["latest"] is NSNull })
    #expect(try qtool.run(["train", "show", "goog-up"]).status == 66)
  }
}
