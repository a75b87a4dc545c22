import Foundation

/// libFuzzer's entry point for the archive target (`make fuzz`); the work is in FuzzTargets.archive.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ bytes: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
  FuzzTargets.archive(bytes.map { Data(bytes: $0, count: count) } ?? Data())
  return 0
}
