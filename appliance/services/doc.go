// Package services wires the product's services together: it opens the box's database on the
// data directory, the key custody with the seal providers the box has, the wallet service and
// its chain backend, mounts the web page and API on them, and serves them. It runs in the
// child process PID 1 supervises ("anyad serve") and, unchanged, in development mode on a host
// ("anyad dev", where -network regtest points the wallet at a local regtest node).
//
// # Wallet service
//
// The wallet service (package node/wallet) opens as soon as the custody has accounts, locked
// or not: it needs only the accounts' public descriptors (the single-key ones, BIP84 first,
// whose addresses the Receive page hands out; the BIP48 cosigner key is not a wallet of its
// own). Until then it looks for them every 2 seconds and whenever the page asks. It signs
// through the custody (hsm.Custody.SignPSBT under the signing policy, not finalized: the
// wallet finalizes), so sending needs the custody unlocked. It follows the chain backend saved
// with package node/backend, opened at start, and the one the owner chooses on the page, which
// replaces (and closes) the one before. The wallet and its backend stop before the database
// closes.
//
// # Updates
//
// Run starts the update agent (package appliance/update/agent) right after the database
// opens. On the box (Config.Box, "anyad serve") it works on the running slot, the boot disk
// and the ESP (agent.BoxConfig) and restarts through PID 1 (control.System.Reboot); on a host
// ("anyad dev") it is unmanaged: it keeps records, the page says updates are not available
// here and installs are refused (agent.ErrUnmanaged). An agent that cannot start is logged
// and the box runs without updates.
//
// agent.Boot settles what this boot is before any subsystem migrates: a committed slot
// (CommittedFile is written for PID 1), a trial of a newly installed slot, or the fallback
// after a failed update, which the page reports. On a trial, breaking schema migrations wait
// for the commit: the web subsystem migrates through agent.Migrate; the other subsystems
// migrate inside their packages and have no breaking migration (a test enforces it; see
// Run for where to gate one). After the services are up, a trial runs its health check
// (agent.Confirm, HealthDeadline counted from the boot): the storage is on the data
// partition, migrated and consistent; the page answers GET /healthz on its own listener;
// the custody reads its state and, when the TPM alone protects the wallet, unlocked it; the
// configured chain backend, if any, answers (a node still syncing counts). All passed: the
// slot is committed. Not by the deadline: the agent records why, marks the slot bad and
// reboots into the previous one. PID 1 has a longer deadline for a services process that
// never gets that far (pid1.TrialDeadline).
//
// The test build whose health check fails (the QEMU update tests' "v3") is an anyad built
// with
//
//	-ldflags "-X github.com/anya-edge/anya/appliance/services.failHealth=1"
//
// which adds a check that fails at once (for good, so the agent does not wait for the
// deadline); any other non-empty value fails until the deadline. The switch lives in the
// anyad binary, the initramfs's /init, so that build's signed initramfs payload differs from
// a good build's. It only acts on a trial boot.
//
// Before the agent switches to a newly installed slot (agent.Config.BeforeSwitch), a wallet
// protected by the TPM gets the new slot's boot state approved (hsm.Custody.ApproveBoot):
// the PCR values are predicted by replaying the firmware's TCG event log with the new
// kernel's Authenticode digest, the new initramfs's digest and the command line with the
// other slot's names substituted (hsm/tpm Predict; see tpmapprove.go for which PCRs change
// and the policy when one cannot be predicted: the install stops before the switch).
//
// A second link-time switch, benchAPI, serves POST /debug/bench/slotwrite in the QEMU update
// tests' build only: a plain sequential write to the inactive slot's unused tail, the
// baseline of the install throughput figure (see bench.go).
//
// Uploaded bundles are spooled to SpoolDir on the data partition (the page's upload, see
// package appliance/web). A bundle on a USB stick PID 1 mounted is installed from the page too
// (stickBundle). The fleet check-ins (package appliance/update/checkin, fleet.go) run beside
// the page once the owner enrolls the box; the device key is a TPM signing key when the box
// has a TPM, else FleetKeyFile. Config.UpdateOffer replaces the check-ins' offer for tests.
//
// Backups (backups.go): the scheduler of package appliance/recovery/backup writes them into
// BackupsDir on the data partition after changes and daily, and copies each onto the
// sticks PID 1 mounts under usbstick.MountRoot (Config.StickRoot in tests).
package services
