// swift-tools-version: 6.1
import PackageDescription

// Dependencies point inwards: qtool → QtoolCLI → QtoolEngine → QtoolData → QtoolStore → QtoolCore,
// and QtoolEngine → QtoolModels (CXGBoost) → QtoolCore.
// QtoolArgs (the in-house parser) depends on nothing but Foundation.
let package = Package(
  name: "qtool",
  platforms: [.macOS(.v14)],
  products: [
    .executable(name: "qtool", targets: ["qtool"])
  ],
  dependencies: [
    .package(url: "https://github.com/groue/GRDB.swift", exact: "7.10.0"),
    .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    .package(url: "https://github.com/jpsim/Yams", exact: "6.2.2"),
    .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
    .package(url: "https://github.com/hummingbird-project/hummingbird", exact: "2.28.1"),
    .package(url: "https://github.com/hummingbird-project/hummingbird-websocket", exact: "2.8.1"),
    .package(url: "https://github.com/hummingbird-project/hummingbird-auth", exact: "2.5.0"),
    .package(url: "https://github.com/vapor/jwt-kit", exact: "5.8.0"),
    .package(url: "https://github.com/swift-server/swift-prometheus", exact: "2.4.1"),
    .package(url: "https://github.com/swift-server/swift-service-lifecycle", exact: "2.13.0"),
  ],
  targets: [
    // MARK: System libraries

    /** libcurl, with typed wrappers for its variadic setopt/getinfo. */
    .systemLibrary(
      name: "CCurl", pkgConfig: "libcurl",
      providers: [.apt(["libcurl4-openssl-dev"])]),
    /** libarchive, for zip, gzip and tar streams. */
    .systemLibrary(
      name: "CArchive", pkgConfig: "libarchive",
      providers: [.apt(["libarchive-dev"])]),
    /** XGBoost's C API (Debian's libxgboost-dev), for gradient-boosted trees: its header only.
     The library is opened when a model first needs it (QtoolModels/XGBoostLibrary.swift). */
    .systemLibrary(name: "CXGBoost", providers: [.apt(["libxgboost-dev"])]),

    // MARK: Libraries

    /** The in-house argument parser: command tree, parsing, help, man page, completions. */
    .target(name: "QtoolArgs"),
    /** Pure domain: bars, timeframes, calendars, errors. No I/O. */
    .target(name: "QtoolCore"),
    /** The SQLite store: schema, migrations, bulk bar I/O. */
    .target(
      name: "QtoolStore",
      dependencies: [
        "QtoolCore",
        .product(name: "GRDB", package: "GRDB.swift"),
        .product(name: "GRDBSQLite", package: "GRDB.swift"),
      ]),
    /** Reading and fetching market data: files, archives (libarchive), HTTP (libcurl). */
    .target(
      name: "QtoolData",
      dependencies: ["QtoolCore", "QtoolStore", "CCurl", "CArchive", .product(name: "Crypto", package: "swift-crypto")]),
    /** Model families: gradient-boosted trees through XGBoost, logistic and ridge regression. */
    .target(name: "QtoolModels", dependencies: ["QtoolCore", "CXGBoost"]),
    /** The operations a user can run, shared by the CLI and the server. */
    .target(
      name: "QtoolEngine",
      dependencies: [
        "QtoolCore", "QtoolStore", "QtoolData", "QtoolModels",
        .product(name: "Yams", package: "Yams"),
        .product(name: "Logging", package: "swift-log"),
      ],
      plugins: ["BuildInfoPlugin"]),
    /** `qtool serve`: the REST API, streams, auth, metrics and the dashboard over QtoolEngine. */
    .target(
      name: "QtoolServer",
      dependencies: [
        "QtoolEngine", "QtoolCore", "QtoolStore", "QtoolArgs",
        .product(name: "Hummingbird", package: "hummingbird"),
        .product(name: "HummingbirdCore", package: "hummingbird"),
        .product(name: "HummingbirdTLS", package: "hummingbird"),
        .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
        .product(name: "HummingbirdAuth", package: "hummingbird-auth"),
        .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
        .product(name: "JWTKit", package: "jwt-kit"),
        .product(name: "Prometheus", package: "swift-prometheus"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "Crypto", package: "swift-crypto"),
      ],
      exclude: ["OpenAPI/openapi.json"]),
    /** The command tree, one file per command, terminal rendering and exit codes. */
    .target(
      name: "QtoolCLI",
      dependencies: [
        "QtoolArgs", "QtoolEngine", "QtoolCore", "QtoolStore", "QtoolData", "QtoolServer",
        .product(name: "Logging", package: "swift-log"),
      ]),

    // MARK: Build tools

    /** Records the git commit and build date for `qtool version --json`. */
    .plugin(name: "BuildInfoPlugin", capability: .buildTool(), path: "Sources/BuildInfoPlugin"),

    // MARK: Executables

    /** The qtool binary. Linked with lld so that its own memory stays small: packed relative
     relocations (3.5 MB of relocation entries the loader no longer reads at every start) and no
     exported symbols (the static runtime's link arguments export every Swift symbol, 2.5 MB of
     dynamic symbol tables nothing looks up). `qtool serve` idles in 45 MB instead of 52.
     In release builds the functions qtool's common jobs run come first, next to each other
     (hot-functions.order, from `make hot-order`; `make release` compiles every function into a
     section of its own so that lld can move it): the kernel maps the 64 KB around each page of
     code a process touches, and a runner's 1.7 MB of code spread over 35 MB kept 18 MB of the
     binary resident. A paper runner notifying a webhook peaks at 32.5 MB instead of 43. */
    .executableTarget(
      name: "qtool", dependencies: ["QtoolCLI"], exclude: ["exports.map", "hot-functions.order", "hot-functions.sh"],
      linkerSettings: [
        .unsafeFlags([
          "-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs",
          "-Xlinker", "--version-script=\(Context.packageDirectory)/Sources/qtool/exports.map",
        ], .when(platforms: [.linux])),
        .unsafeFlags([
          "-Xlinker", "--symbol-ordering-file=\(Context.packageDirectory)/Sources/qtool/hot-functions.order",
          "-Xlinker", "--no-warn-symbol-ordering",
        ], .when(platforms: [.linux], configuration: .release)),
      ]),
    /** Benchmarks that print figures against same-run baselines (`make bench`). */
    .executableTarget(
      name: "QtoolBench",
      dependencies: ["QtoolCore", "QtoolStore", "QtoolData", "QtoolEngine", "QtoolModels", "QtoolTestSupport"]),

    // MARK: Tests

    .testTarget(name: "QtoolArgsTests", dependencies: ["QtoolArgs"]),
    .testTarget(name: "QtoolCoreTests", dependencies: ["QtoolCore"]),
    .testTarget(name: "QtoolStoreTests", dependencies: ["QtoolStore", "QtoolCore"]),
    .testTarget(name: "QtoolModelsTests", dependencies: ["QtoolModels", "QtoolCore"]),
    /** A loopback HTTP server serving recorded responses, shared by the test targets. */
    .target(name: "QtoolTestSupport", dependencies: ["QtoolData"], path: "Tests/QtoolTestSupport"),
    .testTarget(name: "QtoolDataTests", dependencies: ["QtoolData", "QtoolStore", "QtoolCore", "QtoolTestSupport"]),
    .testTarget(name: "QtoolEngineTests", dependencies: ["QtoolEngine", "QtoolStore", "QtoolCore", "QtoolModels", "QtoolData", "QtoolTestSupport"]),
    .testTarget(
      name: "QtoolServerTests",
      dependencies: [
        "QtoolServer", "QtoolEngine", "QtoolCore", "QtoolStore",
        .product(name: "HummingbirdTesting", package: "hummingbird"),
        .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
      ]),
    .testTarget(
      name: "QtoolCLITests", dependencies: ["QtoolCLI", "QtoolArgs", "QtoolCore", "QtoolData", "QtoolStore", "QtoolTestSupport"],
      exclude: ["Snapshots", "Support/zsh-complete.zsh"]),
  ]
)
