import CXGBoost
import Foundation
import QtoolCore

/// An error from a model family: XGBoost's own message (a parameter it refuses, a model it
/// cannot load), or a numerical failure of a linear model. Bad input (65): the spec or data.
public struct ModelError: QtoolError, Equatable {
  public var message: String
  public init(_ message: String) { self.message = message }
  public var category: ErrorCategory { .invalidInput }
  public var code: String { "model_error" }
  public var hint: ErrorHint? { "check the model section of the spec (qtool train new writes a working one)" }
}

/// Thin, checked wrappers over XGBoost's C API. Every call returns non-zero on failure and
/// `XGBGetLastError()` says why.
enum XGBoost {
  static func check(_ code: Int32, _ what: String) throws {
    guard code != 0 else { return }
    let message = XGBoostLibrary.loaded.XGBGetLastError().map { String(cString: $0) } ?? "unknown error"
    throw ModelError("XGBoost \(what): \(message)")
  }

  /// The library's version, e.g. `1.7.4`, or why it cannot be loaded.
  static let version: String = {
    guard let library = try? XGBoostLibrary.load() else { return "not installed" }
    var major: Int32 = 0
    var minor: Int32 = 0
    var patch: Int32 = 0
    library.XGBoostVersion(&major, &minor, &patch)
    return "\(major).\(minor).\(patch)"
  }()
}

/// A dense matrix of 32-bit floats as XGBoost holds it; NaN is missing.
final class DMatrix {
  let handle: DMatrixHandle
  let rows: Int

  /// `values` row-major, `rows × columns`; `labels` one per row (or empty).
  init(values: [Float], rows: Int, columns: Int, labels: [Float] = []) throws {
    try XGBoostLog.install()
    precondition(values.count == rows * columns, "a matrix's values fill its rows and columns")
    var handle: DMatrixHandle?
    try values.withUnsafeBufferPointer { buffer in
      try XGBoost.check(XGBoostLibrary.loaded.XGDMatrixCreateFromMat(buffer.baseAddress, bst_ulong(rows), bst_ulong(columns), .nan, &handle), "creating a matrix")
    }
    self.handle = handle!
    self.rows = rows
    if !labels.isEmpty {
      precondition(labels.count == rows, "one label per row")
      try labels.withUnsafeBufferPointer { buffer in
        try XGBoost.check(XGBoostLibrary.loaded.XGDMatrixSetFloatInfo(self.handle, "label", buffer.baseAddress, bst_ulong(rows)), "setting labels")
      }
    }
  }

  deinit { _ = XGBoostLibrary.loaded.XGDMatrixFree(handle) }
}

/// A booster: trained round by round, saved to and loaded from a buffer, and asked for predictions.
final class Booster {
  let handle: BoosterHandle

  /// A booster over `cache` (the matrices it trains and evaluates on), with `parameters` set
  /// in order (a key may repeat, e.g. `eval_metric`).
  init(cache: [DMatrix], parameters: [(String, String)]) throws {
    try XGBoostLog.install()
    var handle: BoosterHandle?
    var handles: [DMatrixHandle?] = cache.map { $0.handle }
    try XGBoost.check(XGBoostLibrary.loaded.XGBoosterCreate(&handles, bst_ulong(handles.count), &handle), "creating a booster")
    self.handle = handle!
    for (key, value) in parameters {
      try XGBoost.check(XGBoostLibrary.loaded.XGBoosterSetParam(self.handle, key, value), "setting \(key)=\(value)")
    }
  }

  /// A booster loaded from a saved buffer (JSON or UBJSON).
  init(buffer: Data) throws {
    try XGBoostLog.install()
    var handle: BoosterHandle?
    try XGBoost.check(XGBoostLibrary.loaded.XGBoosterCreate(nil, 0, &handle), "creating a booster")
    self.handle = handle!
    try buffer.withUnsafeBytes { bytes in
      try XGBoost.check(XGBoostLibrary.loaded.XGBoosterLoadModelFromBuffer(self.handle, bytes.baseAddress, bst_ulong(bytes.count)), "loading a model")
    }
  }

  deinit { _ = XGBoostLibrary.loaded.XGBoosterFree(handle) }

  func setParameter(_ key: String, _ value: String) throws {
    try XGBoost.check(XGBoostLibrary.loaded.XGBoosterSetParam(handle, key, value), "setting \(key)=\(value)")
  }

  func updateOneIteration(_ iteration: Int, _ train: DMatrix) throws {
    try XGBoost.check(XGBoostLibrary.loaded.XGBoosterUpdateOneIter(handle, Int32(iteration), train.handle), "training round \(iteration)")
  }

  /// The library's evaluation line for `iteration`, e.g. `[3]\ttrain-logloss:0.61\tvalid-logloss:0.66`.
  func evaluate(_ iteration: Int, _ sets: [(DMatrix, String)]) throws -> String {
    var handles: [DMatrixHandle?] = sets.map { $0.0.handle }
    let names = sets.map { strdup($0.1) }
    defer { names.forEach { free($0) } }
    var pointers: [UnsafePointer<CChar>?] = names.map { UnsafePointer($0) }
    var result: UnsafePointer<CChar>?
    try XGBoost.check(
      XGBoostLibrary.loaded.XGBoosterEvalOneIter(handle, Int32(iteration), &handles, &pointers, bst_ulong(sets.count), &result), "evaluating round \(iteration)")
    return result.map { String(cString: $0) } ?? ""
  }

  /// Predictions for every row of `matrix` from rounds `0..<rounds` (all when 0): one value
  /// per row, or one per row and class for a multi-class model.
  func predict(_ matrix: DMatrix, rounds: Int = 0) throws -> [Float] {
    let config = "{\"type\": 0, \"training\": false, \"iteration_begin\": 0, \"iteration_end\": \(rounds), \"strict_shape\": false}"
    var shape: UnsafePointer<bst_ulong>?
    var dimension: bst_ulong = 0
    var result: UnsafePointer<Float>?
    try XGBoost.check(XGBoostLibrary.loaded.XGBoosterPredictFromDMatrix(handle, matrix.handle, config, &shape, &dimension, &result), "predicting")
    guard let shape, let result else { return [] }
    var count = 1
    for k in 0..<Int(dimension) { count *= Int(shape[k]) }
    return Array(UnsafeBufferPointer(start: result, count: count))
  }

  /// The model in `format` (`json` or `ubj`).
  func save(format: String = "ubj") throws -> Data {
    var length: bst_ulong = 0
    var bytes: UnsafePointer<CChar>?
    try XGBoost.check(XGBoostLibrary.loaded.XGBoosterSaveModelToBuffer(handle, "{\"format\": \"\(format)\"}", &length, &bytes), "saving the model")
    guard let bytes else { return Data() }
    return Data(bytes: bytes, count: Int(length))
  }

  var boostedRounds: Int {
    var rounds: Int32 = 0
    _ = XGBoostLibrary.loaded.XGBoosterBoostedRounds(handle, &rounds)
    return Int(rounds)
  }

  var featureCount: Int {
    var count: bst_ulong = 0
    _ = XGBoostLibrary.loaded.XGBoosterGetNumFeature(handle, &count)
    return Int(count)
  }
}
