// Package storage is the single persistent store of the appliance: one bbolt
// database file through which every subsystem keeps its state.
//
// # Why bbolt
//
// The appliance is an embedded device that may lose power at any moment and
// has no operator to repair a damaged database. bbolt is a pure Go,
// single-file, copy-on-write B+tree with fully serializable ACID
// transactions: a transaction that Update reports as committed has been
// written and fsynced, and a crash at any point leaves the file at the last
// committed state, with no write-ahead log to replay and no background
// compaction. It needs no cgo, no server process and no tuning, and a
// consistent snapshot of the whole file can be streamed from a read
// transaction while writers carry on, which gives cheap online backups.
//
// # Layout
//
// Each subsystem owns one top-level bucket named after it (for example
// "wallet" or "web") and is free to create nested buckets below it. Names
// starting with an underscore are reserved for this package; the bucket
// MetaBucket ("_meta") records the schema version and migration history of
// every subsystem.
//
// # Schema migrations and rollback
//
// A subsystem declares its schema as an ordered list of Migration values and
// calls DB.Migrate at start-up. Every migration runs in its own write
// transaction together with the bookkeeping that records it, so a migration
// is either applied and recorded or not applied at all.
//
// A firmware rollback can leave data written by a newer schema in front of
// older code. Each migration therefore states whether it is Breaking, that is
// whether code that only knows earlier versions can no longer read and write
// the data safely. The meta bucket records the minimum schema version a
// reader must know (the version of the newest breaking migration), and
// Migrate refuses with ErrSchemaTooNew when the code knows less than that,
// while still accepting data whose newer migrations were all non-breaking.
//
// # Typed tables
//
// Table gives typed access to one bucket, with values encoded as JSON so that
// adding a field to a stored struct is a compatible change.
//
// # Export and import
//
// ExportSubsystems writes chosen subsystems (whole, or some direct children of their bucket:
// ExportSpec.Only and Except) with their schema records as one consistent snapshot, in a
// simple deterministic stream that ends with its SHA-256 (layout in export.go); equal data
// gives equal bytes. ImportSubsystems puts such a stream into a database all or nothing: it
// reads and checks the whole stream first — format, digest, and every subsystem's schema
// against the versions the importing code knows (ImportOptions.Known), refusing data of a
// newer breaking schema with ErrSchemaTooNew exactly as Migrate would — and then writes
// everything in one write transaction. The importing code's next Migrate brings older data
// up to date, since the schema records came along. A subsystem exported in part replaces
// only that part of the target, which keeps the rest (for example a secret bound to the
// device). Encrypted backups (appliance/recovery/backup) are built on these.
//
// # Change counters
//
// Each subsystem has a generation (DB.Generation) that grows when a write transaction that
// changed it commits, and DB.Watch wakes a watcher after such commits, so that a backup can
// follow changes without polling the data. Writes through Table, Migrate and
// ImportSubsystems are counted by this package; code that writes raw bbolt buckets calls
// DB.MarkChanged. The counters live in memory, per open DB.
//
// WriteFileAtomic, which BackupFile uses, is exported for other writers of files that must
// never be seen half written.
//
// # Durability settings
//
// The database is opened with bbolt's default sync behaviour: every commit is
// fsynced before Update returns. The only deviation from bbolt's defaults is
// NoFreelistSync: the list of free pages is not written on each commit but
// rebuilt by scanning the tree when the file is opened. The freelist is
// derived data, so this costs nothing in durability; it saves page writes on
// every commit (which matters on flash storage) and means a stale freelist
// can never disagree with the tree after a crash. The price is a scan of the
// page tree at Open, which is negligible at the sizes this appliance keeps.
package storage
