import Foundation

/// libFuzzer's entry point for the spec target (`make fuzz`); the work is in FuzzTargets.spec.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ bytes: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
  FuzzTargets.spec(bytes.map { Data(bytes: $0, count: count) } ?? Data())
  return 0
}
