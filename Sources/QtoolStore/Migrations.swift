import GRDB

/// The schema's timeline. Append-only: a migration that has shipped is never edited; change
/// the schema by registering a new one at the end.
enum Migrations {
  /// The timeline as GRDB runs it on an existing store: each pending migration in its own
  /// transaction.
  static var migrator: DatabaseMigrator { steps.migrator }

  static var steps: MigrationSteps {
    var migrator = MigrationSteps()

    migrator.registerMigration("001-market-data") { db in
      try db.execute(
        sql: """
          CREATE TABLE instruments (
            id INTEGER PRIMARY KEY,
            source TEXT NOT NULL,
            symbol TEXT NOT NULL,
            kind TEXT NOT NULL DEFAULT 'unknown',
            UNIQUE (source, symbol)
          );
          CREATE TABLE datasets (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            instrument_id INTEGER NOT NULL REFERENCES instruments(id),
            timeframe TEXT NOT NULL,
            calendar TEXT NOT NULL CHECK (calendar IN ('24x7', 'weekdays')),
            origin TEXT NOT NULL CHECK (origin IN ('downloaded', 'imported', 'derived')),
            parent_id INTEGER REFERENCES datasets(id) ON DELETE SET NULL,
            pipeline TEXT,
            content_hash TEXT,
            row_count INTEGER NOT NULL DEFAULT 0,
            gap_count INTEGER NOT NULL DEFAULT 0,
            first_ts INTEGER,
            last_ts INTEGER,
            metadata TEXT,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL
          );
          CREATE TABLE bars (
            dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
            ts INTEGER NOT NULL,
            open REAL NOT NULL,
            high REAL NOT NULL,
            low REAL NOT NULL,
            close REAL NOT NULL,
            volume REAL NOT NULL,
            PRIMARY KEY (dataset_id, ts)
          ) WITHOUT ROWID;
          CREATE TABLE download_jobs (
            id INTEGER PRIMARY KEY,
            source TEXT NOT NULL,
            request TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled')),
            error TEXT,
            started_at INTEGER NOT NULL,
            finished_at INTEGER
          );
          CREATE TABLE download_tasks (
            id INTEGER PRIMARY KEY,
            job_id INTEGER NOT NULL REFERENCES download_jobs(id) ON DELETE CASCADE,
            dataset_id INTEGER REFERENCES datasets(id) ON DELETE SET NULL,
            url TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled')),
            attempts INTEGER NOT NULL DEFAULT 0,
            bytes INTEGER NOT NULL DEFAULT 0,
            bars INTEGER NOT NULL DEFAULT 0,
            error TEXT
          );
          CREATE INDEX download_tasks_job ON download_tasks(job_id);
          """)
    }

    migrator.registerMigration("002-strategies-and-backtests") { db in
      try db.execute(
        sql: """
          CREATE TABLE strategies (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            type TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'draft'
              CHECK (status IN ('draft', 'active', 'paused', 'stopped', 'error')),
            path TEXT,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL
          );
          CREATE TABLE strategy_versions (
            id INTEGER PRIMARY KEY,
            strategy_id INTEGER NOT NULL REFERENCES strategies(id) ON DELETE CASCADE,
            version INTEGER NOT NULL,
            hash TEXT NOT NULL,
            spec_text TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            UNIQUE (strategy_id, hash),
            UNIQUE (strategy_id, version)
          );
          CREATE TABLE backtest_runs (
            id TEXT PRIMARY KEY,
            strategy_version_id INTEGER REFERENCES strategy_versions(id) ON DELETE SET NULL,
            strategy_name TEXT NOT NULL,
            spec_text TEXT NOT NULL,
            datasets TEXT NOT NULL,
            params TEXT NOT NULL,
            engine_version TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled')),
            progress REAL NOT NULL DEFAULT 0,
            metrics TEXT,
            error TEXT,
            created_at INTEGER NOT NULL,
            finished_at INTEGER
          );
          CREATE TABLE trades (
            run_id TEXT NOT NULL REFERENCES backtest_runs(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            symbol TEXT NOT NULL,
            side TEXT NOT NULL CHECK (side IN ('long', 'short')),
            size REAL NOT NULL,
            entry_ts INTEGER NOT NULL,
            entry_price REAL NOT NULL,
            exit_ts INTEGER NOT NULL,
            exit_price REAL NOT NULL,
            pnl REAL NOT NULL,
            return REAL NOT NULL,
            commission REAL NOT NULL,
            reason TEXT NOT NULL,
            PRIMARY KEY (run_id, seq)
          ) WITHOUT ROWID;
          -- A run's curves, read and written whole: one row of little-endian blobs, not a
          -- row per bar (a million rows per run made recording cost seconds).
          CREATE TABLE run_series (
            run_id TEXT PRIMARY KEY REFERENCES backtest_runs(id) ON DELETE CASCADE,
            timestamps BLOB NOT NULL,
            equity BLOB NOT NULL,
            benchmark BLOB
          );
          """)
    }
    migrator.registerMigration("003-dataset-columns") { db in
      // Extra columns of derived datasets (features), one blob of little-endian doubles per
      // column, aligned with the dataset's bars in time order: read whole, like the bars.
      try db.execute(
        sql: """
          CREATE TABLE dataset_columns (
            dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            name TEXT NOT NULL,
            data BLOB NOT NULL,
            PRIMARY KEY (dataset_id, name)
          ) WITHOUT ROWID;
          """)
    }
    migrator.registerMigration("004-grid-runs") { db in
      try db.execute(
        sql: """
          CREATE TABLE grid_runs (
            id TEXT PRIMARY KEY,
            strategy_name TEXT NOT NULL,
            spec_text TEXT NOT NULL,
            dataset TEXT NOT NULL,
            axes TEXT NOT NULL,
            rank TEXT NOT NULL,
            created_at INTEGER NOT NULL
          );
          CREATE TABLE grid_results (
            grid_id TEXT NOT NULL REFERENCES grid_runs(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            params TEXT NOT NULL,
            metrics TEXT NOT NULL,
            PRIMARY KEY (grid_id, seq)
          ) WITHOUT ROWID;
          """)
    }
    migrator.registerMigration("005-bar-snapshots") { db in
      // A dataset's bars as one blob per column, written after a whole-dataset read and
      // dropped by any write to its bars: rows decode at ~3M/s, a blob at memory speed.
      // `bars_version` moves on every write, so a snapshot can never outlive its bars.
      try db.execute(
        sql: """
          ALTER TABLE datasets ADD COLUMN bars_version INTEGER NOT NULL DEFAULT 0;
          CREATE TABLE bar_snapshots (
            dataset_id INTEGER PRIMARY KEY REFERENCES datasets(id) ON DELETE CASCADE,
            bars_version INTEGER NOT NULL,
            row_count INTEGER NOT NULL,
            ts BLOB NOT NULL,
            open BLOB NOT NULL,
            high BLOB NOT NULL,
            low BLOB NOT NULL,
            close BLOB NOT NULL,
            volume BLOB NOT NULL
          );
          """)
    }
    migrator.registerMigration("006-bar-chunks") { db in
      // Bars in chunks of up to 4,096, one blob per column: a row per bar capped imports at
      // about 0.4M bars/s, and the snapshots of 005 doubled the disk a dataset took.
      try db.execute(
        sql: """
          CREATE TABLE bar_chunks (
            id INTEGER PRIMARY KEY,
            dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
            first_ts INTEGER NOT NULL,
            last_ts INTEGER NOT NULL,
            row_count INTEGER NOT NULL,
            ts BLOB NOT NULL,
            open BLOB NOT NULL,
            high BLOB NOT NULL,
            low BLOB NOT NULL,
            close BLOB NOT NULL,
            volume BLOB NOT NULL
          );
          CREATE UNIQUE INDEX bar_chunks_by_start ON bar_chunks (dataset_id, first_ts);
          CREATE INDEX bar_chunks_by_end ON bar_chunks (dataset_id, last_ts);
          """)
      guard let handle = db.sqliteConnection else { throw StoreError.sqlite("closed connection") }
      for id in try Int64.fetchAll(db, sql: "SELECT DISTINCT dataset_id FROM bars") {
        try QtoolDatabase.writeChunks(handle, datasetID: id, try QtoolDatabase.readLegacyBarRows(db, datasetID: id))
      }
      // Without snapshots, nothing reads the version they were checked against.
      try db.execute(sql: "DROP TABLE bars; DROP TABLE bar_snapshots; ALTER TABLE datasets DROP COLUMN bars_version")
    }
    migrator.registerMigration("007-jobs") { db in
      // Every long operation is a job from the moment it starts; download tasks hang off
      // their job. The jobs of download_jobs (written only when a download ended) move over.
      try db.execute(
        sql: """
          CREATE TABLE jobs (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            request TEXT NOT NULL,
            status TEXT NOT NULL
              CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled', 'interrupted')),
            progress TEXT,
            pid INTEGER,
            host TEXT,
            created_at INTEGER NOT NULL,
            started_at INTEGER,
            finished_at INTEGER,
            heartbeat_at INTEGER,
            cancel_requested_at INTEGER,
            error TEXT,
            result TEXT
          );
          CREATE INDEX jobs_by_created ON jobs (created_at);
          CREATE INDEX jobs_by_status ON jobs (status);
          INSERT INTO jobs (id, kind, request, status, created_at, started_at, finished_at, error)
            SELECT 'jd' || id, 'download', json_object('source', source, 'request', request),
                   status, started_at, started_at, finished_at,
                   CASE WHEN error IS NULL THEN NULL
                        ELSE json_object('code', 'download_failed', 'category', 'failure', 'message', error,
                                         'details', json_object(), 'hint', NULL) END
            FROM download_jobs;
          CREATE TABLE download_tasks_new (
            id INTEGER PRIMARY KEY,
            job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
            dataset_id INTEGER REFERENCES datasets(id) ON DELETE SET NULL,
            url TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled')),
            attempts INTEGER NOT NULL DEFAULT 0,
            bytes INTEGER NOT NULL DEFAULT 0,
            bars INTEGER NOT NULL DEFAULT 0,
            error TEXT
          );
          INSERT INTO download_tasks_new (id, job_id, dataset_id, url, status, attempts, bytes, bars, error)
            SELECT id, 'jd' || job_id, dataset_id, url, status, attempts, bytes, bars, error FROM download_tasks;
          DROP TABLE download_tasks;
          DROP TABLE download_jobs;
          ALTER TABLE download_tasks_new RENAME TO download_tasks;
          CREATE INDEX download_tasks_job ON download_tasks (job_id);
          ALTER TABLE backtest_runs ADD COLUMN job_id TEXT;
          ALTER TABLE grid_runs ADD COLUMN job_id TEXT;
          """)
    }
    migrator.registerMigration("008-grid-settings") { db in
      // What a grid was run with (range, capital, gaps, warm-up), so any of its rows can be
      // run again as a full backtest; grids stored before have none and use the defaults.
      try db.execute(sql: "ALTER TABLE grid_runs ADD COLUMN settings TEXT")
    }
    migrator.registerMigration("009-models") { db in
      // `qtool train`: a model is a name and its spec; each training is a version with its
      // folds' trained models (XGBoost buffers or linear coefficients), its per-epoch metrics
      // and its test-block predictions. A version is `training` until it is complete; a
      // training that fails or is cancelled deletes its version.
      try db.execute(
        sql: """
          CREATE TABLE models (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            path TEXT,
            spec_text TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL
          );
          CREATE TABLE model_versions (
            id INTEGER PRIMARY KEY,
            model_id INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,
            version INTEGER NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('training', 'ready')),
            job_id TEXT,
            spec_text TEXT NOT NULL,
            spec_hash TEXT NOT NULL,
            family TEXT NOT NULL,
            label_kind TEXT NOT NULL,
            features TEXT NOT NULL,
            params TEXT NOT NULL,
            plan TEXT NOT NULL,
            datasets TEXT NOT NULL DEFAULT '[]',
            data_hash TEXT,
            library_version TEXT,
            best_epoch INTEGER,
            epochs INTEGER,
            summary TEXT,
            created_at INTEGER NOT NULL,
            finished_at INTEGER,
            UNIQUE (model_id, version)
          );
          CREATE TABLE model_folds (
            version_id INTEGER NOT NULL REFERENCES model_versions(id) ON DELETE CASCADE,
            fold INTEGER NOT NULL,
            blocks TEXT NOT NULL,
            best_epoch INTEGER NOT NULL,
            rows TEXT NOT NULL,
            model BLOB NOT NULL,
            PRIMARY KEY (version_id, fold)
          ) WITHOUT ROWID;
          CREATE TABLE training_metrics (
            version_id INTEGER NOT NULL REFERENCES model_versions(id) ON DELETE CASCADE,
            fold INTEGER NOT NULL,
            epoch INTEGER NOT NULL,
            figures TEXT NOT NULL,
            PRIMARY KEY (version_id, fold, epoch)
          ) WITHOUT ROWID;
          CREATE TABLE model_predictions (
            version_id INTEGER NOT NULL REFERENCES model_versions(id) ON DELETE CASCADE,
            symbol TEXT NOT NULL,
            timestamps BLOB NOT NULL,
            predictions BLOB NOT NULL,
            PRIMARY KEY (version_id, symbol)
          ) WITHOUT ROWID;
          """)
    }
    migrator.registerMigration("010-paper-trading") { db in
      // Live paper trading: an account per strategy (cash, positions, fills, equity per bar),
      // the runs (processes) that advance it, the signals they emit, and the notification
      // outbox a delivery task drains. A bar's rows commit in one transaction.
      try db.execute(
        sql: """
          CREATE TABLE paper_accounts (
            id TEXT PRIMARY KEY,
            strategy_name TEXT NOT NULL,
            strategy_version INTEGER NOT NULL,
            spec_hash TEXT NOT NULL,
            spec_text TEXT NOT NULL,
            params TEXT NOT NULL,
            capital REAL NOT NULL,
            timeframe TEXT NOT NULL,
            symbols TEXT NOT NULL,
            datasets TEXT NOT NULL,
            source TEXT,
            from_ts INTEGER,
            cursor_ts INTEGER,
            cash REAL NOT NULL,
            equity REAL NOT NULL,
            halted INTEGER NOT NULL DEFAULT 0,
            paused INTEGER NOT NULL DEFAULT 0,
            status TEXT NOT NULL CHECK (status IN ('open', 'closed')),
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL,
            closed_at INTEGER
          );
          CREATE UNIQUE INDEX paper_accounts_one_open ON paper_accounts (strategy_name) WHERE status = 'open';
          CREATE INDEX paper_accounts_by_strategy ON paper_accounts (strategy_name, created_at);
          CREATE TABLE paper_pauses (
            account_id TEXT NOT NULL REFERENCES paper_accounts(id) ON DELETE CASCADE,
            from_ts INTEGER NOT NULL,
            to_ts INTEGER,
            PRIMARY KEY (account_id, from_ts)
          ) WITHOUT ROWID;
          CREATE TABLE paper_positions (
            account_id TEXT NOT NULL REFERENCES paper_accounts(id) ON DELETE CASCADE,
            symbol TEXT NOT NULL,
            side TEXT NOT NULL CHECK (side IN ('long', 'short')),
            size REAL NOT NULL,
            entry_ts INTEGER NOT NULL,
            entry_price REAL NOT NULL,
            peak REAL NOT NULL,
            stop REAL,
            target REAL,
            PRIMARY KEY (account_id, symbol)
          ) WITHOUT ROWID;
          CREATE TABLE paper_fills (
            account_id TEXT NOT NULL REFERENCES paper_accounts(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            ts INTEGER NOT NULL,
            symbol TEXT NOT NULL,
            side TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
            action TEXT NOT NULL,
            size REAL NOT NULL,
            price REAL NOT NULL,
            commission REAL NOT NULL,
            reason TEXT NOT NULL,
            pnl REAL,
            signal_id TEXT,
            created_at INTEGER NOT NULL,
            PRIMARY KEY (account_id, seq)
          ) WITHOUT ROWID;
          CREATE TABLE paper_equity (
            account_id TEXT NOT NULL REFERENCES paper_accounts(id) ON DELETE CASCADE,
            ts INTEGER NOT NULL,
            equity REAL NOT NULL,
            cash REAL NOT NULL,
            PRIMARY KEY (account_id, ts)
          ) WITHOUT ROWID;
          CREATE TABLE strategy_runs (
            id TEXT PRIMARY KEY,
            account_id TEXT NOT NULL REFERENCES paper_accounts(id) ON DELETE CASCADE,
            strategy_name TEXT NOT NULL,
            feed TEXT NOT NULL,
            request TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('running', 'stopping', 'stopped', 'completed', 'failed')),
            pid INTEGER,
            host TEXT,
            log_path TEXT,
            started_at INTEGER NOT NULL,
            heartbeat_at INTEGER,
            finished_at INTEGER,
            stop_requested_at INTEGER,
            close_positions INTEGER NOT NULL DEFAULT 0,
            bars_processed INTEGER NOT NULL DEFAULT 0,
            last_bar_ts INTEGER,
            stale_rounds INTEGER NOT NULL DEFAULT 0,
            divergences INTEGER NOT NULL DEFAULT 0,
            note TEXT,
            error TEXT
          );
          CREATE INDEX strategy_runs_by_strategy ON strategy_runs (strategy_name, started_at);
          CREATE TABLE signals (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            account_id TEXT NOT NULL REFERENCES paper_accounts(id) ON DELETE CASCADE,
            run_id TEXT,
            strategy_name TEXT NOT NULL,
            strategy_version INTEGER NOT NULL,
            symbol TEXT NOT NULL,
            timeframe TEXT NOT NULL,
            source TEXT,
            feed TEXT NOT NULL,
            bar_ts INTEGER NOT NULL,
            type TEXT NOT NULL CHECK (type IN ('BUY', 'SELL', 'HOLD')),
            action TEXT NOT NULL,
            reason TEXT NOT NULL,
            strength_raw REAL NOT NULL,
            strength_level TEXT NOT NULL,
            price REAL,
            indicators TEXT NOT NULL,
            late INTEGER NOT NULL DEFAULT 0,
            suppressed INTEGER NOT NULL DEFAULT 0,
            created_at INTEGER NOT NULL
          );
          CREATE INDEX signals_by_created ON signals (created_at);
          CREATE INDEX signals_by_strategy ON signals (strategy_name, bar_ts);
          CREATE TABLE notification_channels (
            name TEXT PRIMARY KEY,
            kind TEXT NOT NULL CHECK (kind IN ('webhook', 'command', 'telegram', 'discord', 'slack')),
            config TEXT NOT NULL,
            filters TEXT NOT NULL,
            enabled INTEGER NOT NULL DEFAULT 1,
            created_at INTEGER NOT NULL
          );
          CREATE TABLE notification_outbox (
            id INTEGER PRIMARY KEY,
            signal_id TEXT NOT NULL REFERENCES signals(id) ON DELETE CASCADE,
            channel TEXT NOT NULL REFERENCES notification_channels(name) ON DELETE CASCADE,
            status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'dead')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at INTEGER NOT NULL,
            created_at INTEGER NOT NULL,
            delivered_at INTEGER,
            last_error TEXT,
            UNIQUE (signal_id, channel)
          );
          CREATE INDEX notification_outbox_due ON notification_outbox (status, next_attempt_at);
          CREATE TABLE delivery_attempts (
            outbox_id INTEGER NOT NULL REFERENCES notification_outbox(id) ON DELETE CASCADE,
            attempt INTEGER NOT NULL,
            started_at INTEGER NOT NULL,
            latency_ms INTEGER NOT NULL,
            status INTEGER,
            outcome TEXT NOT NULL CHECK (outcome IN ('delivered', 'retry', 'dead')),
            error TEXT,
            PRIMARY KEY (outbox_id, attempt)
          ) WITHOUT ROWID;
          """)
    }
    migrator.registerMigration("011-serve-auth") { db in
      try db.execute(
        sql: """
          CREATE TABLE users (
            id INTEGER PRIMARY KEY,
            username TEXT NOT NULL UNIQUE,
            password_hash TEXT NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('admin', 'trader', 'viewer')),
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL,
            failed_logins INTEGER NOT NULL DEFAULT 0,
            locked_until INTEGER,
            last_login_at INTEGER
          );
          CREATE TABLE refresh_tokens (
            id TEXT PRIMARY KEY,
            family TEXT NOT NULL,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            token_hash TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL,
            used_at INTEGER,
            revoked_at INTEGER
          );
          CREATE INDEX refresh_tokens_family ON refresh_tokens (family);
          CREATE TABLE api_tokens (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            token_hash TEXT NOT NULL UNIQUE,
            prefix TEXT NOT NULL,
            scopes TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            expires_at INTEGER,
            last_used_at INTEGER,
            revoked_at INTEGER
          );
          CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY,
            at INTEGER NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            target TEXT,
            status INTEGER NOT NULL,
            request_id TEXT,
            ip TEXT
          );
          CREATE INDEX audit_log_at ON audit_log (at);
          CREATE TABLE idempotency_keys (
            principal TEXT NOT NULL,
            key TEXT NOT NULL,
            method TEXT NOT NULL,
            path TEXT NOT NULL,
            body_hash TEXT NOT NULL,
            status INTEGER,
            response BLOB,
            content_type TEXT,
            created_at INTEGER NOT NULL,
            PRIMARY KEY (principal, key)
          );
          """)
    }
    migrator.registerMigration("012-grid-shards") { db in
      // `backtest grid --shard K/N`: a shard records which shard of which grid it ran (with
      // everything a merge checks: spec, snapshot hash, engine version) and its combinations'
      // results by their place in the grid's ordered combination list. One transaction per
      // shard, keyed by (grid, shard) and (grid, combination): a rerun replaces, never doubles.
      try db.execute(
        sql: """
          CREATE TABLE grid_shards (
            grid_id TEXT NOT NULL,
            shard INTEGER NOT NULL,
            shards INTEGER NOT NULL,
            combinations INTEGER NOT NULL,
            first_combination INTEGER NOT NULL,
            end_combination INTEGER NOT NULL,
            strategy_name TEXT NOT NULL,
            spec_text TEXT NOT NULL,
            spec_hash TEXT NOT NULL,
            dataset TEXT NOT NULL,
            axes TEXT NOT NULL,
            rank TEXT NOT NULL,
            settings TEXT NOT NULL,
            snapshot_hash TEXT,
            engine_version TEXT NOT NULL,
            bars INTEGER NOT NULL,
            warmup_bars INTEGER NOT NULL,
            job_id TEXT,
            completed_at INTEGER NOT NULL,
            PRIMARY KEY (grid_id, shard)
          ) WITHOUT ROWID;
          CREATE TABLE grid_shard_results (
            grid_id TEXT NOT NULL,
            combination INTEGER NOT NULL,
            params TEXT NOT NULL,
            metrics TEXT NOT NULL,
            score REAL,
            PRIMARY KEY (grid_id, combination)
          ) WITHOUT ROWID;
          -- A grid submitted to Slurm (`backtest grid --slurm`): where its files are and the
          -- Slurm job ids of its array and merge step (the latest submission's, after a resume).
          CREATE TABLE grid_submissions (
            grid_id TEXT PRIMARY KEY,
            job_id TEXT,
            work_dir TEXT NOT NULL,
            shards INTEGER NOT NULL,
            array_job TEXT NOT NULL,
            merge_job TEXT NOT NULL,
            history TEXT NOT NULL DEFAULT '[]',
            created_at INTEGER NOT NULL
          ) WITHOUT ROWID;
          -- In a snapshot file (`data snapshot`): its content hash, which shards check.
          CREATE TABLE snapshot_info (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
          ) WITHOUT ROWID;
          """)
    }
    migrator.registerMigration("013-walk-forward-merges") { db in
      // `backtest grid --walk-forward … --shard K/N`: a shard records its block of the
      // (fold × combination) work items, fold-major, with what a merge checks, and for each item
      // the combination's metrics in sample (train) and out of sample (test). A merge picks each
      // fold's best from the in-sample scores and stores the stitched report under the grid id.
      try db.execute(
        sql: """
          CREATE TABLE walk_forward_shards (
            grid_id TEXT NOT NULL,
            shard INTEGER NOT NULL,
            shards INTEGER NOT NULL,
            folds INTEGER NOT NULL,
            combinations INTEGER NOT NULL,
            first_item INTEGER NOT NULL,
            end_item INTEGER NOT NULL,
            strategy_name TEXT NOT NULL,
            spec_text TEXT NOT NULL,
            spec_hash TEXT NOT NULL,
            dataset TEXT NOT NULL,
            axes TEXT NOT NULL,
            rank TEXT NOT NULL,
            settings TEXT NOT NULL,
            walk_forward TEXT NOT NULL,
            windows TEXT NOT NULL,
            snapshot_hash TEXT,
            engine_version TEXT NOT NULL,
            bars INTEGER NOT NULL,
            warmup_bars INTEGER NOT NULL,
            job_id TEXT,
            completed_at INTEGER NOT NULL,
            PRIMARY KEY (grid_id, shard)
          ) WITHOUT ROWID;
          CREATE TABLE walk_forward_shard_results (
            grid_id TEXT NOT NULL,
            item INTEGER NOT NULL,
            params TEXT NOT NULL,
            in_sample TEXT NOT NULL,
            out_of_sample TEXT NOT NULL,
            score REAL,
            PRIMARY KEY (grid_id, item)
          ) WITHOUT ROWID;
          -- A merged walk-forward: the report a local run prints, as JSON.
          CREATE TABLE walk_forward_runs (
            id TEXT PRIMARY KEY,
            strategy_name TEXT NOT NULL,
            dataset TEXT NOT NULL,
            walk_forward TEXT NOT NULL,
            shards INTEGER NOT NULL,
            report TEXT NOT NULL,
            job_id TEXT,
            created_at INTEGER NOT NULL
          ) WITHOUT ROWID;
          """)
    }
    // A live signal records the model versions its decision read
    // (`[{"name", "version"}]`, empty for a strategy without model()).
    migrator.registerMigration("014-signal-models") { db in
      try db.execute(sql: "ALTER TABLE signals ADD COLUMN models TEXT NOT NULL DEFAULT '[]'")
    }
    migrator.registerMigration("015-run-halts") { db in
      // A run stopped by risk.max_drawdown_halt (or ruin) records when and why, so `backtest
      // show` and the run's JSON say so as the run's summary did.
      try db.execute(
        sql: """
          ALTER TABLE backtest_runs ADD COLUMN halted_at INTEGER;
          ALTER TABLE backtest_runs ADD COLUMN halt_reason TEXT;
          """)
    }
    migrator.registerMigration("016-grid-shard-definition") { db in
      // A shard records the grid it is part of as given (`{"axes":[{"name","values"}…],
      // "where"}`: axes in order, the condition), so a merge can rebuild the ordered
      // combination list and check every stored result's params against its place in it.
      try db.execute(sql: "ALTER TABLE grid_shards ADD COLUMN definition TEXT")
    }
    migrator.registerMigration("017-walk-forward-shard-definition") { db in
      // The same for a walk-forward's shards: a merge checks every item's params against the
      // combination its place names.
      try db.execute(sql: "ALTER TABLE walk_forward_shards ADD COLUMN definition TEXT")
    }
    migrator.registerMigration("018-shard-data-and-results-hashes") { db in
      // What a merge cannot rebuild, it checks by hash: the bars a shard read (shards run
      // without a snapshot on stores whose data differ must not merge), and its results as
      // written (any field edited or damaged since, not only params and the ranked score).
      for table in ["grid_shards", "walk_forward_shards"] {
        try db.execute(sql: "ALTER TABLE \(table) ADD COLUMN data_hash TEXT")
        try db.execute(sql: "ALTER TABLE \(table) ADD COLUMN results_hash TEXT")
      }
    }
    return migrator
  }
}

/// The migrations in order: GRDB's migrator for a store that has some of them, or, for a new
/// store, all of them in one transaction (`createSchema`).
struct MigrationSteps {
  private(set) var steps: [(identifier: String, migrate: @Sendable (Database) throws -> Void)] = []

  mutating func registerMigration(_ identifier: String, migrate: @escaping @Sendable (Database) throws -> Void) {
    steps.append((identifier, migrate))
  }

  var migrator: DatabaseMigrator {
    var migrator = DatabaseMigrator()
    for step in steps { migrator.registerMigration(step.identifier, migrate: step.migrate) }
    return migrator
  }

  /// Creates the whole schema of a store that has none yet, in one transaction, and records
  /// every migration as applied, exactly as GRDB's migrator does (same `grdb_migrations` table,
  /// foreign keys off during the change and checked at its end). Migration by migration, a new
  /// store paid a commit, a write-ahead-log sync and a foreign-key pass per migration: about
  /// 15 ms of CPU, which every shard of a sharded grid pays once, into a store of its own.
  /// Returns false, having changed nothing, when the store is not empty after all.
  func createSchema(_ db: Database) throws -> Bool {
    try db.execute(sql: "PRAGMA foreign_keys = OFF")
    defer { try? db.execute(sql: "PRAGMA foreign_keys = ON") }
    var created = false
    try db.inTransaction(.immediate) {
      guard try Int.fetchOne(db, sql: "SELECT count(*) FROM sqlite_master") == 0 else { return .rollback }
      try db.execute(sql: "CREATE TABLE grdb_migrations (identifier TEXT NOT NULL PRIMARY KEY)")
      for step in steps {
        try step.migrate(db)
        try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES (?)", arguments: [step.identifier])
      }
      try db.checkForeignKeys()
      created = true
      return .commit
    }
    return created
  }
}
