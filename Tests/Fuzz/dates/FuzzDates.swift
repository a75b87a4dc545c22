import Foundation

/// libFuzzer's entry point for the dates target (`make fuzz`); the work is in FuzzTargets.dates.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ bytes: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
  FuzzTargets.dates(bytes.map { Data(bytes: $0, count: count) } ?? Data())
  return 0
}
