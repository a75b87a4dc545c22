import CXGBoost
import Foundation
import QtoolCore

/// XGBoost's C API, opened with `dlopen` the first time a model needs it. Linking it would load
/// it, OpenMP and dmlc into every qtool process and run their initialisers: about 4 MB of a live
/// runner's and `serve`'s resident memory, for commands that never train or predict.
struct XGBoostLibrary: @unchecked Sendable {
  let XGBGetLastError: XGBGetLastError_call
  let XGBRegisterLogCallback: XGBRegisterLogCallback_call
  let XGBoostVersion: XGBoostVersion_call
  let XGDMatrixCreateFromMat: XGDMatrixCreateFromMat_call
  let XGDMatrixSetFloatInfo: XGDMatrixSetFloatInfo_call
  let XGDMatrixFree: XGDMatrixFree_call
  let XGBoosterCreate: XGBoosterCreate_call
  let XGBoosterFree: XGBoosterFree_call
  let XGBoosterSetParam: XGBoosterSetParam_call
  let XGBoosterLoadModelFromBuffer: XGBoosterLoadModelFromBuffer_call
  let XGBoosterUpdateOneIter: XGBoosterUpdateOneIter_call
  let XGBoosterEvalOneIter: XGBoosterEvalOneIter_call
  let XGBoosterPredictFromDMatrix: XGBoosterPredictFromDMatrix_call
  let XGBoosterSaveModelToBuffer: XGBoosterSaveModelToBuffer_call
  let XGBoosterBoostedRounds: XGBoosterBoostedRounds_call
  let XGBoosterGetNumFeature: XGBoosterGetNumFeature_call

  /// Debian's libxgboost0 installs the library under its soname; the unversioned name is the
  /// development symlink, for a build against another installation.
  static let names = ["libxgboost.so.0", "libxgboost.so"]

  /// Opened once per process; the handle is never closed (the library keeps threads and state).
  static let shared: Result<XGBoostLibrary, XGBoostUnavailable> = {
    do throws(XGBoostUnavailable) { return .success(try open()) } catch { return .failure(error) }
  }()

  /// The library, or why it cannot be used.
  static func load() throws(XGBoostUnavailable) -> XGBoostLibrary { try shared.get() }

  /// The library once a matrix or booster exists: loading succeeded before either was made.
  static var loaded: XGBoostLibrary {
    guard case .success(let library) = shared else { preconditionFailure("XGBoost is used before it was loaded") }
    return library
  }

  private static func open() throws(XGBoostUnavailable) -> XGBoostLibrary {
    var reasons: [String] = []
    for name in names {
      if let handle = dlopen(name, RTLD_NOW | RTLD_LOCAL) {
        return try XGBoostLibrary(handle: handle, name: name)
      }
      reasons.append(dlerror().map { String(cString: $0) } ?? name)
    }
    throw XGBoostUnavailable(reason: reasons.joined(separator: "; "))
  }

  private init(handle: UnsafeMutableRawPointer, name: String) throws(XGBoostUnavailable) {
    func call<T>(_ symbol: String, _: T.Type = T.self) throws(XGBoostUnavailable) -> T {
      guard let address = dlsym(handle, symbol) else {
        throw XGBoostUnavailable(reason: "\(name) has no \(symbol) (XGBoost 1.6 or later is needed)")
      }
      return unsafeBitCast(address, to: T.self)
    }
    XGBGetLastError = try call("XGBGetLastError")
    XGBRegisterLogCallback = try call("XGBRegisterLogCallback")
    XGBoostVersion = try call("XGBoostVersion")
    XGDMatrixCreateFromMat = try call("XGDMatrixCreateFromMat")
    XGDMatrixSetFloatInfo = try call("XGDMatrixSetFloatInfo")
    XGDMatrixFree = try call("XGDMatrixFree")
    XGBoosterCreate = try call("XGBoosterCreate")
    XGBoosterFree = try call("XGBoosterFree")
    XGBoosterSetParam = try call("XGBoosterSetParam")
    XGBoosterLoadModelFromBuffer = try call("XGBoosterLoadModelFromBuffer")
    XGBoosterUpdateOneIter = try call("XGBoosterUpdateOneIter")
    XGBoosterEvalOneIter = try call("XGBoosterEvalOneIter")
    XGBoosterPredictFromDMatrix = try call("XGBoosterPredictFromDMatrix")
    XGBoosterSaveModelToBuffer = try call("XGBoosterSaveModelToBuffer")
    XGBoosterBoostedRounds = try call("XGBoosterBoostedRounds")
    XGBoosterGetNumFeature = try call("XGBoosterGetNumFeature")
  }
}

/// Gradient-boosted trees were asked for and the XGBoost library cannot be opened (69): the
/// rest of qtool works without it.
public struct XGBoostUnavailable: QtoolError, Equatable {
  public var reason: String
  public var message: String { "the XGBoost library cannot be loaded (\(reason)); gradient-boosted tree models need it" }
  public var category: ErrorCategory { .unavailable }
  public var code: String { "xgboost_unavailable" }
  public var hint: ErrorHint? { "install it: apt-get install libxgboost0 (or `make deps`)" }
}
