import Foundation

/// libFuzzer's entry point for the csv target (`make fuzz`); the work is in FuzzTargets.csv.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ bytes: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
  FuzzTargets.csv(bytes.map { Data(bytes: $0, count: count) } ?? Data())
  return 0
}
