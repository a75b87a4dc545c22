#if canImport(Glibc)
  import Glibc
#endif

/// Process-wide settings for number crunching.
public enum ProcessTuning {
  /// Keeps freed memory in the heap for the next allocation instead of returning it to the
  /// kernel. A backtest allocates columns of megabytes and frees them moments later; with
  /// glibc's defaults each comes from a fresh mmap, and touching it costs a page fault per
  /// 4 KB (a tenth of a grid's time). The peak is the same; the pages are reused.
  public static func keepFreedMemory() {
    #if canImport(Glibc)
      // mallopt is declared in <malloc.h>, which the Glibc module does not export.
      typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
      guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return }
      let mallopt = unsafeBitCast(symbol, to: Mallopt.self)
      let trimThreshold: Int32 = -1  // M_TRIM_THRESHOLD
      let mmapThreshold: Int32 = -3  // M_MMAP_THRESHOLD
      _ = mallopt(mmapThreshold, 256 << 20)
      _ = mallopt(trimThreshold, 1 << 30)
    #endif
  }
}
