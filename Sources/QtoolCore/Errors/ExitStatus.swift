/// qtool's exit codes (DESIGN §3). `qtool help exit-codes` and the man page print this table.
public enum ExitStatus: Int32, CaseIterable, Sendable {
  case success = 0
  case failure = 1
  case assertionFailed = 2
  case usage = 64
  case dataError = 65
  case noInput = 66
  case unavailable = 69
  case software = 70
  case cannotCreate = 73
  case ioError = 74
  case temporaryFailure = 75
  case permissionDenied = 77
  case interrupted = 130
  case terminated = 143

  public var meaning: String {
    switch self {
    case .success: return "success"
    case .failure: return "the operation failed (see the message)"
    case .assertionFailed: return "a backtest --assert condition did not hold"
    case .usage: return "the command line was wrong (unknown option, bad value, missing argument)"
    case .dataError: return "the input data is invalid (verify found problems, malformed file or spec)"
    case .noInput: return "an input file, dataset, strategy, run or job does not exist"
    case .unavailable: return "a data source or service is unavailable, or refused the request for good"
    case .software: return "an internal error in qtool (please report it)"
    case .cannotCreate: return "an output file or the store cannot be written, or it exists already"
    case .ioError: return "standard output could not be written (disk full, device error)"
    case .temporaryFailure: return "a temporary condition (dataset in use, rate limited, server error, a download that did not arrive intact): retry later"
    case .permissionDenied: return "not allowed: missing, wrong, expired or revoked credentials, or a token without the scope"
    case .interrupted: return "cancelled by Ctrl-C (SIGINT) or `qtool jobs cancel`; nothing half-written is left"
    case .terminated: return "cancelled by SIGTERM; nothing half-written is left"
    }
  }
}
