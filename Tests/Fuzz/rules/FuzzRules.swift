import Foundation

/// libFuzzer's entry point for the rules target (`make fuzz`); the work is in FuzzTargets.rules.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ bytes: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
  FuzzTargets.rules(bytes.map { Data(bytes: $0, count: count) } ?? Data())
  return 0
}
